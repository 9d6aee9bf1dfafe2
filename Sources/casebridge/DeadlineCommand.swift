import ArgumentParser
import CaseBridgeNode
import CaseBridgeProto
import Foundation

struct OverdueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "overdue",
        abstract: "Open cases near or past their deadline, most urgent first; a supervisor's reason for a breach.",
        discussion: """
            Every open case runs one clock: until NCCT acknowledges (by urgency), until the embassy \
            answers NCCT's question, or, once acknowledged, until the next update. The policy is in \
            the federation directory (README: "Deadlines"), and both nodes compute the same due \
            times from the case's own history.
            """,
        subcommands: [OverdueList.self, OverdueExplain.self],
        defaultSubcommand: OverdueList.self
    )
}

struct OverdueList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Cases past their deadline, or at three quarters of it (--all: every open case).",
        discussion: "Examples:\n  casebridge overdue\n  casebridge overdue --all"
    )
    @OptionGroup var node: NodeOptions
    @Flag(help: "Every open case and its deadline, on time or not.") var all = false
    @Option(help: "At most this many.") var limit: Int = 100
    @Flag(help: "Whole case ids and every column in full, however wide.") var wide = false

    func run() async throws {
        var request = ListDeadlinesRequest()
        request.minLevel = all ? .onTime : .threeQuarters
        request.limit = try listLimit(limit)
        let entries = try await node.console().stream(Console.listDeadlines, request)
        let empty = all ? "No open cases." : "Nothing is overdue or due soon."
        if Output.printedAsJSONOrEmpty(entries, json: node.json, empty: empty) { return }
        Output.table(
            ["CASE", "REF", "URGENCY", "STATUS", "WAITING FOR", "DUE", "DEADLINE", "REASON"],
            entries.map { entry in
                let c = entry.summary ?? CaseSummary()
                let d = entry.deadline ?? Deadline()
                return [
                    wide ? c.caseID : Output.shortID(c.caseID), c.originReference.isEmpty ? "-" : c.originReference,
                    c.urgency.description, c.status.description, "\(d.clock) by \(d.waitingOn)",
                    Output.shortTime(d.dueAtMs), Output.deadlineLevel(d.level),
                    d.breachReason.isEmpty ? "-" : "\(d.breachReason) (\(d.breachReasonBy))",
                ]
            },
            flexible: ["REF", "REASON"],
            wide: wide
        )
    }
}

struct OverdueExplain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Records why a case missed its deadline (supervisors; audited, shown with the deadline).",
        discussion: "Example:\n  casebridge overdue explain IDN-2026-0412 --reason \"site cut off by floods\""
    )
    @OptionGroup var node: NodeOptions
    @Argument(help: "The case: its id, a unique start of it, or its reference.") var caseID: String
    @Option(help: "Why the deadline was missed.") var reason: String

    func run() async throws {
        let console = try node.console()
        var request = ExplainBreachRequest()
        request.caseID = try await console.resolveCase(caseID)
        request.reason = reason
        let explained = try await console.call(Console.explainBreach, request)
        if node.json { Output.json(ProtoJSON.object(explained)); return }
        print("Recorded for case \(request.caseID): \(explained.deadline?.breachReason ?? reason)")
    }
}

extension Output {
    /// The levels as the web console and the README name them.
    static func deadlineLevel(_ level: DeadlineLevel) -> String {
        switch level {
        case .overdue: "OVERDUE"
        case .threeQuarters: "due soon (3/4 gone)"
        case .half: "half gone"
        default: "on time"
        }
    }
}
