import Foundation
import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeStore

/// Figures for a period: what NCCT reports to the government, and what an embassy reports home.
/// Counts only; never a name.
extension CaseTracker {
    public func report(_ request: ReportRequest, nowMs: Int64? = nil) throws -> Report {
        let nowMs = nowMs ?? Clock.nowMs()
        guard request.untilMs == 0 || request.sinceMs <= request.untilMs else {
            throw RPCError(.invalidArgument, "since_ms: must not be after until_ms")
        }
        var scope = ReportScope()
        scope.sinceMs = request.sinceMs
        scope.untilMs = request.untilMs
        scope.requestingNode = request.requestingNode.isEmpty ? nil : request.requestingNode
        var report = Report()
        report.sinceMs = request.sinceMs
        report.untilMs = request.untilMs
        report.requestingNode = request.requestingNode
        report.madeAtMs = nowMs
        try store.read { db in
            func counts(_ column: ReportScope.Column, named name: (String) -> String) throws -> [ReportCount] {
                try db.reportCounts(scope, by: column).map { row in
                    var count = ReportCount()
                    count.key = name(row.key)
                    count.cases = UInt32(clamping: row.cases)
                    count.persons = UInt32(clamping: row.persons)
                    return count
                }
            }
            func enumName<E: ProtoEnum>(_: E.Type) -> (String) -> String {
                { E(rawValue: Int32($0) ?? 0).description }
            }
            report.byEmbassy = try counts(.embassy) { $0 }
            report.byKind = try counts(.kind, named: enumName(RequestKind.self))
            report.byUrgency = try counts(.urgency, named: enumName(Urgency.self))
            report.byStatus = try counts(.status, named: enumName(CaseStatus.self))
            report.cases = report.byStatus.reduce(0) { $0 + $1.cases }
            report.persons = report.byStatus.reduce(0) { $0 + $1.persons }
            report.personOutcomes = try db.reportPersonStatuses(scope).map { row in
                var count = OutcomeCount()
                count.status = PersonStatus(rawValue: row.status)
                count.count = UInt32(clamping: row.count)
                return count
            }
            let durations = try db.reportDurations(scope, completedStatus: CaseStatus.completed.rawValue)
            report.toAcknowledgement = Self.duration(durations.acknowledged)
            report.toCompletion = Self.duration(durations.completed)
        }
        var due = ListDeadlinesRequest()
        due.minLevel = .threeQuarters
        due.limit = 10_000
        let inScope = try deadlines(due, nowMs: nowMs).filter { entry in
            guard let summary = entry.summary else { return false }
            return (scope.sinceMs == 0 || summary.createdAtMs >= scope.sinceMs)
                && (scope.untilMs == 0 || summary.createdAtMs < scope.untilMs)
                && (scope.requestingNode == nil || summary.requestingNode == scope.requestingNode)
        }
        report.overdueNow = UInt32(clamping: inScope.filter { $0.deadline?.level == .overdue }.count)
        report.dueSoonNow = UInt32(clamping: inScope.count) - report.overdueNow
        report.csv = Self.csv(report)
        return report
    }

    static func duration(_ values: [Int64]) -> ReportDuration {
        var duration = ReportDuration()
        let sorted = values.sorted()
        duration.cases = UInt32(clamping: sorted.count)
        guard !sorted.isEmpty else { return duration }
        // Nearest rank: the value at or above the share of the cases.
        func rank(_ share: Double) -> Int64 {
            sorted[min(sorted.count - 1, Int((Double(sorted.count) * share).rounded(.up)) - 1)]
        }
        duration.medianMs = rank(0.5)
        duration.p90Ms = rank(0.9)
        return duration
    }

    /// "section,key,cases,persons" lines; durations in hours.
    static func csv(_ report: Report) -> String {
        var lines = ["section,key,cases,persons"]
        let sections: [(String, [ReportCount])] = [
            ("embassy", report.byEmbassy), ("kind", report.byKind), ("urgency", report.byUrgency),
            ("status", report.byStatus),
        ]
        lines.append("all,all,\(report.cases),\(report.persons)")
        for (section, counts) in sections {
            lines += counts.map { "\(section),\(CSV.cell($0.key)),\($0.cases),\($0.persons)" }
        }
        lines += report.personOutcomes.map { "person outcome,\($0.status),,\($0.count)" }
        for (name, duration) in [
            ("to acknowledgement", report.toAcknowledgement), ("to completion", report.toCompletion),
        ] {
            let d = duration ?? ReportDuration()
            let hours = { (ms: Int64) in String(format: "%.1f", Double(ms) / 3_600_000) }
            lines.append("hours \(name),median,\(d.cases),\(hours(d.medianMs))")
            lines.append("hours \(name),p90,\(d.cases),\(hours(d.p90Ms))")
        }
        lines.append("deadlines now,overdue,\(report.overdueNow),")
        lines.append("deadlines now,due soon,\(report.dueSoonNow),")
        return lines.joined(separator: "\r\n") + "\r\n"
    }
}
