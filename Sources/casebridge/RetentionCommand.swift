import ArgumentParser
import CaseBridgeProto
import Foundation

struct RetentionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retention",
        abstract: "When closed cases' personal data is destroyed, and holds that keep it longer.",
        discussion: """
            A closed case keeps its persons' personal data for the node's retention \
            (retention.days_after_closed in its configuration, 365 days by default); then the \
            data key of the case is destroyed, and with it everything about its persons. The \
            case itself stays, with its statuses, outcome counts and audit.
            """,
        subcommands: [RetentionList.self, RetentionHold.self, RetentionRelease.self],
        defaultSubcommand: RetentionList.self
    )
}

struct RetentionList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Closed and held cases: when each one's personal data goes, or went.",
        discussion: "Example:\n  casebridge retention list"
    )
    @OptionGroup var node: NodeOptions
    @Option(help: "At most this many.") var limit: Int = 50
    @Flag(help: "Whole case ids and every column in full, however wide.") var wide = false

    func run() async throws {
        let console = try node.console()
        var request = ListRetentionRequest()
        request.limit = try listLimit(limit)
        let entries = try await console.stream(Console.listRetention, request)
        if Output.printedAsJSONOrEmpty(entries, json: node.json, empty: "No closed cases yet.") { return }
        Output.table(
            ["CASE", "STATUS", "CLOSED", "PERSONAL DATA"],
            entries.map { entry in
                let data =
                    entry.purgedAtMs > 0
                    ? "destroyed \(Output.shortTime(entry.purgedAtMs))"
                    : entry.held
                        ? "HELD: \(entry.holdReason) (\(entry.heldBy), \(Output.shortTime(entry.heldAtMs)))"
                        : entry.dueAtMs > 0 ? "kept until \(Output.shortTime(entry.dueAtMs))" : "kept (case open)"
                return [
                    wide ? entry.caseID : Output.shortID(entry.caseID), entry.status.description,
                    entry.closedAtMs > 0 ? Output.shortTime(entry.closedAtMs) : "-", data,
                ]
            },
            flexible: ["PERSONAL DATA"],
            wide: wide
        )
    }
}

struct RetentionHold: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hold",
        abstract: "Keeps a case's personal data past its retention, saying why.",
        discussion: "Example:\n  casebridge retention hold IDN-2026-0412 --reason \"court case 2026/114\""
    )
    @OptionGroup var node: NodeOptions
    @Argument(help: "The case: its id, a unique start of it, or its reference.") var caseID: String
    @Option(help: "Why it is kept (shown to whoever lists retention).") var reason: String

    func run() async throws {
        try await hold(node: node, caseID: caseID, hold: true, reason: reason)
    }
}

struct RetentionRelease: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Ends a hold: the case's personal data goes when its retention is over.",
        discussion: "Example:\n  casebridge retention release IDN-2026-0412"
    )
    @OptionGroup var node: NodeOptions
    @Argument(help: "The case: its id, a unique start of it, or its reference.") var caseID: String

    func run() async throws {
        try await hold(node: node, caseID: caseID, hold: false, reason: "")
    }
}

private func hold(node: NodeOptions, caseID: String, hold: Bool, reason: String) async throws {
    let console = try node.console()
    var request = HoldRetentionRequest()
    request.caseID = try await console.resolveCase(caseID)
    request.hold = hold
    request.reason = reason
    let entry = try await console.call(Console.holdRetention, request)
    if node.json { Output.json(ProtoJSON.object(entry)); return }
    print(
        hold
            ? "Case \(entry.caseID): personal data held (\(entry.holdReason))."
            : "Case \(entry.caseID): hold released; personal data goes "
                + (entry.dueAtMs > 0 ? "at \(Output.time(entry.dueAtMs))." : "when its retention ends after closing.")
    )
}
