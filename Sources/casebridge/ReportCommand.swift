import ArgumentParser
import CaseBridgeNode
import CaseBridgeProto
import Foundation

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Figures for a period: cases by embassy, kind, urgency, status; outcomes; how fast.",
        discussion: """
            Covers the cases filed in the period (this node's record of them), conformance test \
            cases left out. Counts only, never a name. Times run from this node's record of the \
            case: to NCCT taking it up (acknowledged, or straight to work or a question), and to \
            its completion.

            Examples:
              casebridge report --since 2026-11-01 --until 2026-12-01
              casebridge report --since 2026-01-01 --embassy embassy-id
              casebridge report --since 2026-01-01 --csv > 2026.csv
              casebridge report --since 2026-01-01 --anonymised > statistics.csv

            --anonymised writes the export for national statistics: persons by month, \
            country, kind, sex, age band and outcome, with every count below the node's \
            threshold (11 unless its configuration says more) written as "<11".
            """
    )
    @OptionGroup var node: NodeOptions
    @Option(help: "From this day or instant (YYYY-MM-DD or ISO 8601, UTC); default: 30 days ago.") var since: String?
    @Option(help: "Until this day or instant (not included); default: now.") var until: String?
    @Option(help: "Only the cases this embassy node opened.") var embassy: String?
    @Flag(help: "Print the figures as CSV (section,key,cases,persons) for a spreadsheet.") var csv = false
    @Flag(help: "Print the anonymised statistics export (CSV, small counts suppressed).") var anonymised = false
    @Option(help: "With --anonymised: suppress counts below this (at least the node's threshold).") var minCount: Int?

    func validate() throws {
        if let minCount, !(1...1_000).contains(minCount) {
            throw fail("--min-count must be from 1 to 1000", code: Exit.badInput)
        }
        if minCount != nil && !anonymised { throw fail("--min-count goes with --anonymised", code: Exit.badInput) }
        if anonymised && embassy != nil {
            throw fail("the anonymised export covers every embassy; leave out --embassy", code: Exit.badInput)
        }
    }

    func run() async throws {
        var request = ReportRequest()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        request.sinceMs = try since.map { try timeMs($0, field: "--since") } ?? now - 30 * 86_400_000
        request.untilMs = try until.map { try timeMs($0, field: "--until") } ?? 0
        if request.untilMs != 0 && request.untilMs < request.sinceMs {
            throw fail("--until must not be before --since", code: Exit.badInput)
        }
        request.requestingNode = embassy ?? ""
        if anonymised {
            var statistics = StatisticsRequest()
            statistics.sinceMs = request.sinceMs
            statistics.untilMs = request.untilMs
            statistics.minCount = UInt32(minCount ?? 0)
            print(try await node.console().call(Console.exportStatistics, statistics).text, terminator: "")
            return
        }
        let report = try await node.console().call(Console.getReport, request)
        if csv {
            print(report.csv, terminator: "")
            return
        }
        if node.json { Output.json(ProtoJSON.object(report)); return }
        let period = "\(Output.time(report.sinceMs)) until \(report.untilMs == 0 ? "now" : Output.time(report.untilMs))"
        print(
            "Cases filed \(period)\(embassy.map { ", \($0) only" } ?? ""): \(report.cases), \(report.persons) persons"
        )
        for (title, counts) in [
            ("By embassy", report.byEmbassy), ("By kind", report.byKind), ("By urgency", report.byUrgency),
            ("By status", report.byStatus),
        ] where !counts.isEmpty {
            print("\n\(title)")
            Output.table(["", "CASES", "PERSONS"], counts.map { [$0.key, String($0.cases), String($0.persons)] })
        }
        if !report.personOutcomes.isEmpty { print("\nPersons: \(Output.counts(report.personOutcomes))") }
        for (title, duration) in [
            ("Taken up by NCCT", report.toAcknowledgement), ("Completed", report.toCompletion),
        ] {
            let d = duration ?? ReportDuration()
            guard d.cases > 0 else {
                print("\(title): none yet")
                continue
            }
            print(
                "\(title): \(d.cases) cases, median \(Output.hours(d.medianMs)), 90 % within \(Output.hours(d.p90Ms))"
            )
        }
        print("Deadlines now: \(report.overdueNow) overdue, \(report.dueSoonNow) due soon")
    }
}

extension Output {
    /// "12 min", "3.5 h", "2.0 days".
    static func hours(_ ms: Int64) -> String {
        let hours = Double(ms) / 3_600_000
        if hours < 1 { return "\(Int((Double(ms) / 60_000).rounded())) min" }
        return hours < 48 ? String(format: "%.1f h", hours) : String(format: "%.1f days", hours / 24)
    }
}
