import Foundation
import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeStore

/// The anonymised export for national statistics: persons counted by month filed, the embassy's
/// country, kind, sex, age band and outcome. Nothing in it names or singles out a person: no names,
/// documents, dates of birth or case ids, and a count below the threshold (k = 11 by default, as the
/// Counter Trafficking Data Collaborative does) is written as "<k".
extension CaseTracker {
    public func statistics(
        _ request: StatisticsRequest,
        minimumCount: Int,
        by member: StaffMember
    ) async throws -> CsvFile {
        guard request.untilMs == 0 || request.sinceMs <= request.untilMs else {
            throw RPCError(.invalidArgument, "since_ms: must not be after until_ms")
        }
        let k = request.minCount == 0 ? minimumCount : Int(request.minCount)
        guard k >= minimumCount else {
            throw RPCError(
                .invalidArgument,
                "min_count: counts below \(minimumCount) are always suppressed at this node; "
                    + "give \(minimumCount) or more"
            )
        }
        var scope = ReportScope()
        scope.sinceMs = request.sinceMs
        scope.untilMs = request.untilMs
        let directory = self.directory
        var counts: [[String]: Int] = [:]
        try store.read { db in
            for caseID in try db.caseIDs(scope) {
                guard let row = try db.caseRow(caseID) else { continue }
                let purged = row.purgedAtMs != nil
                let people = purged ? [] : try Self.persons(of: row, db)
                let filed = Date(timeIntervalSince1970: Double(row.createdAtMs) / 1000)
                let month = Self.month(filed)
                let country = directory.node(row.requestingNode)?.represents ?? "unknown"
                let kind = RequestKind(rawValue: row.kind).description
                for person in try db.persons(caseID) {
                    let detail = people.first { $0.personRef == person.personRef }
                    let key = [
                        month, country, kind, detail.map { Self.sex($0.sex) } ?? "unknown",
                        Self.ageBand(born: detail?.dateOfBirth ?? "", filed: filed),
                        PersonStatus(rawValue: person.status).description,
                    ]
                    counts[key, default: 0] += 1
                }
            }
        }
        var lines = ["month,country,kind,sex,age_band,outcome,persons"]
        for (key, count) in counts.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            lines.append((key.map(CSV.cell) + [count < k ? "<\(k)" : String(count)]).joined(separator: ","))
        }
        await audit(
            event: "statistics.exported",
            actor: member.auditActor,
            subject: "",
            outcome: "ok",
            detail: "rows=\(counts.count) k=\(k) since=\(request.sinceMs) until=\(request.untilMs)"
        )
        var file = CsvFile()
        file.fileName = "casebridge-statistics-\(Self.month(Date())).csv"
        file.text = "\u{FEFF}" + lines.joined(separator: "\r\n") + "\r\n"
        file.rows = UInt32(clamping: counts.count)
        return file
    }

    static func month(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month], from: date)
        return String(format: "%04d-%02d", parts.year ?? 0, parts.month ?? 0)
    }

    static func sex(_ sex: Sex) -> String {
        switch sex {
        case .female: "female"
        case .male: "male"
        case .unspecified: "unknown"
        default: "other"
        }
    }

    /// The age at filing in bands wide enough not to single anyone out; "unknown" without a year of birth.
    static func ageBand(born: String, filed: Date) -> String {
        guard let year = Int(born.prefix(4)) else { return "unknown" }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let age = calendar.component(.year, from: filed) - year
        switch age {
        case ..<0: return "unknown"
        case 0...17: return "0-17"
        case 18...24: return "18-24"
        case 25...34: return "25-34"
        case 35...49: return "35-49"
        default: return "50+"
        }
    }
}
