import ArgumentParser
import CaseBridgeNode
import CaseBridgeProto
import Foundation

struct DuplicatesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "duplicates",
        abstract: "Persons reported more than once (NCCT): review, confirm as the same person, or dismiss.",
        discussion: """
            When a request arrives, NCCT's node compares each of its persons with the persons of \
            every open case: names in any script (transliterated, in any order, with typos), date of \
            birth, document and phone numbers. Likely matches wait here. Confirming one links the \
            two cases and tells each embassy only that one of its persons was linked to another \
            report; an embassy never sees another embassy's case.
            """,
        subcommands: [DuplicatesList.self, DuplicatesDecide.self, DuplicatesDecide.Dismiss.self],
        defaultSubcommand: DuplicatesList.self
    )
}

struct DuplicatesList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Likely matches waiting for a decision (--all: decided ones too).",
        discussion: "Examples:\n  casebridge duplicates\n  casebridge duplicates --all --page 2"
    )
    @OptionGroup var node: NodeOptions
    @Flag(help: "Confirmed and dismissed matches too.") var all = false
    @Option(help: "Only matches involving this case (its id, a unique start of it, or its reference).")
    var `case`: String?
    @Option(help: "Matches per page (1 to 200).") var limit: Int = 20
    @Option(help: "Which page (1 is the first).") var page: Int = 1

    func validate() throws {
        guard (1...200).contains(limit) else { throw fail("--limit must be from 1 to 200", code: Exit.badInput) }
        guard page >= 1, (page - 1) * limit <= Int(UInt32.max) else {
            throw fail("--page must be 1 or more", code: Exit.badInput)
        }
    }

    func run() async throws {
        let console = try node.console()
        var request = ListMatchesRequest()
        request.allStates = all
        if let `case` { request.caseID = try await console.resolveCase(`case`) }
        request.limit = UInt32(limit)
        request.offset = UInt32((page - 1) * limit)
        let found = try await console.call(Console.listMatches, request)
        let empty = all ? "No duplicates found." : "No likely duplicates waiting for a decision."
        if Output.printedAsJSONOrEmpty(found.matches, json: node.json, empty: empty) { return }
        for match in found.matches { print(Self.describe(match)) }
        let first = Int(request.offset) + 1, last = Int(request.offset) + found.matches.count
        let more = last < Int(found.total) ? "; next: --page \(page + 1)" : ""
        print("Matches \(first)–\(last) of \(found.total)\(more)")
    }

    /// One match as a short block: both persons side by side, what agrees, the decision.
    static func describe(_ match: PersonMatch) -> String {
        func person(_ p: Person?, _ ref: String, _ summary: CaseSummary?) -> String {
            let s = summary ?? CaseSummary()
            let name = p.map { $0.fullName.isEmpty ? $0.nativeName : $0.fullName } ?? "(withheld)"
            let born = p?.dateOfBirth.isEmpty == false ? ", born \(p!.dateOfBirth)" : ""
            let reference = s.originReference.isEmpty ? "" : " \(s.originReference)"
            return "\(name)\(born) — \(ref) of case \(Output.shortID(s.caseID))\(reference) from \(s.requestingNode)"
        }
        let state =
            switch match.state {
            case .confirmed: "confirmed by \(match.decidedBy)"
            case .dismissed: "dismissed by \(match.decidedBy)"
            default: "waiting: casebridge duplicates confirm \(match.matchID) (or dismiss)"
            }
        let conflicts = match.conflictingFields.isEmpty ? "" : "; differ: \(fields(match.conflictingFields))"
        return """
            Match \(match.matchID) (score \(match.score)/1000): agree on \(fields(match.agreeingFields))\(conflicts)
              new:   \(person(match.person, match.personRef, match.caseSummary))
              open:  \(person(match.otherPerson, match.otherPersonRef, match.otherCaseSummary))
              \(state)
            """
    }

    static func fields(_ names: [String]) -> String {
        names.map { $0.replacingOccurrences(of: "_", with: " ") }.joined(separator: ", ")
    }
}

struct DuplicatesDecide: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "confirm",
        abstract: "Confirms a match: the same person (the embassies are told their person was linked).",
        discussion: "Example:\n  casebridge duplicates confirm 12"
    )
    @OptionGroup var node: NodeOptions
    @Argument(help: "The match number (from `casebridge duplicates`).") var match: UInt64

    func run() async throws { try await Self.decide(match, .confirmed, node) }

    static func decide(_ match: UInt64, _ decision: MatchState, _ node: NodeOptions) async throws {
        guard match >= 1, match <= UInt64(Int64.max) else {
            throw fail("the match number must be from 1 to \(Int64.max)", code: Exit.badInput)
        }
        var request = DecideMatchRequest()
        request.matchID = match
        request.decision = decision
        let decided = try await node.console().call(Console.decideMatch, request)
        if node.json { Output.json(ProtoJSON.object(decided)); return }
        print(DuplicatesList.describe(decided))
    }

    struct Dismiss: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dismiss",
            abstract: "Dismisses a match: different persons.",
            discussion: "Example:\n  casebridge duplicates dismiss 12"
        )
        @OptionGroup var node: NodeOptions
        @Argument(help: "The match number (from `casebridge duplicates`).") var match: UInt64

        func run() async throws { try await DuplicatesDecide.decide(match, .dismissed, node) }
    }
}
