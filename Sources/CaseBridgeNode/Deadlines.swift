import Foundation
import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeStore

/// The deadlines the federation agreed for each waiting state, in the directory's "deadlines"
/// object (README: "Deadlines"); without one, these defaults.
public struct DeadlinePolicy: Sendable, Equatable {
    /// From filing until NCCT acknowledges, by urgency.
    public var acknowledgeHours: [Urgency: Int] = [.immediate: 2, .urgent: 12, .routine: 24]
    /// From NCCT's question until the embassy answers.
    public var answerHours = 72
    /// From an open case's latest update until the next.
    public var movementDays = 14

    public static let standard = DeadlinePolicy()

    init() {}

    init(_ object: JSONFile) throws(ConfigurationError) {
        if let acknowledge = try object.optionalObject("acknowledge_hours") {
            for urgency in [Urgency.immediate, .urgent, .routine] {
                let hours = acknowledgeHours[urgency] ?? 24
                acknowledgeHours[urgency] = try acknowledge.int("\(urgency)", default: hours, range: 1...8_760)
            }
        }
        answerHours = try object.int("answer_hours", default: answerHours, range: 1...8_760)
        movementDays = try object.int("no_movement_days", default: movementDays, range: 1...365)
    }

    func allowedMs(_ clock: DeadlineClock, urgency: Urgency) -> Int64 {
        switch clock {
        case .acknowledge: Int64(acknowledgeHours[urgency] ?? acknowledgeHours[.routine] ?? 24) * 3_600_000
        case .answer: Int64(answerHours) * 3_600_000
        default: Int64(movementDays) * 86_400_000
        }
    }
}

/// Which clock runs in a status, and whose move it is: NCCT's, or the requesting embassy's.
enum DeadlineRule {
    static func clock(in status: CaseStatus) -> (DeadlineClock, waitingOnNCCT: Bool)? {
        switch status {
        case .submitted, .received: (.acknowledge, true)
        case .infoRequested: (.answer, false)
        case .acknowledged, .inProgress, .onHold: (.movement, true)
        default: nil
        }
    }

    /// The filing time a request carries, held to no later than this node recorded the case and
    /// no earlier than a week before (a wrong clock must not make a case overdue at once). The
    /// embassy and NCCT both record it after the filing, so both keep the same time.
    static func filedAt(_ claimed: Int64, recordedAt: Int64) -> Int64 {
        claimed <= 0 ? recordedAt : min(max(claimed, recordedAt - 7 * 86_400_000), recordedAt)
    }

    /// When an applied change restarts the clock (nil: it keeps running): every update of an
    /// acknowledged, in-progress or on-hold case, and NCCT's question; a case that reached
    /// another state without a change of its own (a catch-up) starts its clock when it moved.
    static func restart(
        from before: CaseStatus,
        to after: CaseStatus,
        by change: CaseUpdate.Change?,
        madeAt: Int64?,
        atMs: Int64
    ) -> Int64? {
        guard let madeAt else { return before == after ? nil : atMs }
        switch clock(in: after)?.0 {
        case .movement: return madeAt
        case .answer: return change?.isInformationRequest == true || before != after ? madeAt : nil
        default: return nil
        }
    }

    /// How far a clock has run: half, three quarters, past due.
    static func level(startedAtMs: Int64, dueAtMs: Int64, nowMs: Int64) -> DeadlineLevel {
        let allowed = max(1, dueAtMs - startedAtMs)
        let gone = nowMs - startedAtMs
        if gone >= allowed { return .overdue }
        if gone * 4 >= allowed * 3 { return .threeQuarters }
        if gone * 2 >= allowed { return .half }
        return .onTime
    }
}

extension CaseTracker {
    /// The statuses in which a clock runs: every open one, and "submitted" (not yet at NCCT).
    static let clockedStatuses = CaseStatus.allKnown.filter { DeadlineRule.clock(in: $0) != nil }

    /// Every open case's running deadline, most urgent first (the largest share of its time gone).
    public func deadlines(_ request: ListDeadlinesRequest, nowMs: Int64? = nil) throws -> [CaseDeadline] {
        let nowMs = nowMs ?? Clock.nowMs()
        let limit = request.limit == 0 ? 100 : Int(min(request.limit, 10_000))
        return try store.read { db in
            var rows: [CaseRow]
            if !request.caseID.isEmpty {
                rows = try db.caseRow(request.caseID, withRequest: false).map { [$0] } ?? []
            } else if request.minLevel == .onTime {
                var filter = CaseFilter()
                filter.statuses = Self.clockedStatuses.map(\.rawValue)
                rows = try db.casePage(filter, order: .updatedOldest, offset: 0, limit: 100_000).rows
            } else {
                rows = try candidates(db, minLevel: request.minLevel, nowMs: nowMs)
            }
            let clocked = try rows.compactMap { row in
                try deadline(row, db, nowMs: nowMs).flatMap { deadline in
                    deadline.level.rawValue >= request.minLevel.rawValue ? (row, deadline) : nil
                }
            }
            func share(_ d: Deadline) -> Double {
                Double(nowMs - d.startedAtMs) / Double(max(1, d.dueAtMs - d.startedAtMs))
            }
            // Summaries for the page only: a list of every open case reads each one's deadline alone.
            return try clocked.sorted { share($0.1) > share($1.1) }.prefix(limit).map { row, deadline in
                var entry = CaseDeadline()
                entry.summary = try summary(row, db)
                entry.deadline = deadline
                return entry
            }
        }
    }

    /// The clock a case runs against now. Its start is kept with the case (``DeadlineRule``) from
    /// the times the request and the updates carry, so both nodes compute the same due time.
    func deadline(_ row: CaseRow, _ db: Database, nowMs: Int64) throws -> Deadline? {
        guard let (clock, waitingOnNCCT) = DeadlineRule.clock(in: CaseStatus(rawValue: row.status)) else { return nil }
        let startedAt = row.clockStartedAtMs > 0 ? row.clockStartedAtMs : row.createdAtMs
        var deadline = Deadline()
        deadline.clock = clock
        deadline.startedAtMs = startedAt
        deadline.dueAtMs = startedAt + directory.deadlines.allowedMs(clock, urgency: Urgency(rawValue: row.urgency))
        deadline.level = DeadlineRule.level(startedAtMs: startedAt, dueAtMs: deadline.dueAtMs, nowMs: nowMs)
        deadline.waitingOn = waitingOnNCCT ? directory.ncct.id : row.requestingNode
        // A reason is recorded only once a run of the clock is overdue, and that run stays overdue.
        if deadline.level == .overdue,
            let reason = try db.breachReason(row.caseID, clock: clock.rawValue, startedAtMs: startedAt)
        {
            deadline.breachReason = reason.reason
            deadline.breachReasonBy = reason.by
        }
        return deadline
    }

    /// Raises a DEADLINE event for each open case whose clock reached a level (half, three quarters,
    /// overdue) not yet raised for this run of the clock: each level once, at each node. A node that
    /// was down while levels passed raises only the highest reached.
    @discardableResult
    func raiseDeadlineEvents(nowMs: Int64? = nil) async throws -> Int {
        let nowMs = nowMs ?? Clock.nowMs()
        var request = ListDeadlinesRequest()
        request.minLevel = .half
        request.limit = 10_000
        let reached = try deadlines(request, nowMs: nowMs)
        let fresh: [(caseID: String, deadline: Deadline)] = try store.read { db in
            try reached.compactMap { entry in
                guard let caseID = entry.summary?.caseID, let deadline = entry.deadline else { return nil }
                let raised = try db.deadlineLevelRaised(
                    caseID,
                    clock: deadline.clock.rawValue,
                    startedAtMs: deadline.startedAtMs
                )
                return deadline.level.rawValue > raised ? (caseID, deadline) : nil
            }
        }
        guard !fresh.isEmpty else { return 0 }
        try await store.write { db in
            for (caseID, deadline) in fresh {
                try db.recordDeadlineLevel(
                    caseID,
                    clock: deadline.clock.rawValue,
                    startedAtMs: deadline.startedAtMs,
                    level: deadline.level.rawValue
                )
                try db.appendEvent(
                    caseID: caseID,
                    kind: CaseEventKind.deadline.rawValue,
                    messageID: DeadlineMarker(deadline).text,
                    atMs: nowMs
                )
            }
        }
        changes.notify()
        return fresh.count
    }

    /// The deadline a DEADLINE event stands for, from its marker and the case as it is now.
    func deadline(marker: String, _ row: CaseRow) -> Deadline? {
        guard let marker = DeadlineMarker(marker) else { return nil }
        var deadline = Deadline()
        deadline.clock = marker.clock
        deadline.startedAtMs = marker.startedAtMs
        deadline.level = marker.level
        deadline.dueAtMs =
            marker.startedAtMs + directory.deadlines.allowedMs(marker.clock, urgency: Urgency(rawValue: row.urgency))
        deadline.waitingOn = marker.clock == .answer ? row.requestingNode : directory.ncct.id
        return deadline
    }

    /// A supervisor's reason for a missed deadline, kept with that clock's run and audited.
    public func explainBreach(_ request: ExplainBreachRequest, by member: StaffMember) async throws -> CaseDeadline {
        let reason = request.reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !reason.isEmpty, reason.count <= 1_000 else {
            throw RPCError(.invalidArgument, "reason: give one, of at most 1,000 characters")
        }
        var lookup = ListDeadlinesRequest()
        lookup.caseID = request.caseID
        guard let current = try deadlines(lookup).first, let deadline = current.deadline else {
            throw RPCError(
                .failedPrecondition,
                "case \(request.caseID) has no running deadline (it is closed or unknown)"
            )
        }
        guard deadline.level == .overdue else {
            throw RPCError(.failedPrecondition, "case \(request.caseID) is not past its deadline")
        }
        try await store.write { db in
            try db.recordBreachReason(
                request.caseID,
                clock: deadline.clock.rawValue,
                startedAtMs: deadline.startedAtMs,
                reason: reason,
                by: member.displayName,
                atMs: Clock.nowMs()
            )
            try db.appendAudit(
                event: "deadline.breach_explained",
                actor: member.auditActor,
                subject: request.caseID,
                outcome: "ok",
                detail: "\(deadline.clock)",
                atMs: Clock.nowMs()
            )
        }
        return try deadlines(lookup).first ?? current
    }

    /// The open cases whose clock has run at least the share of its time `minLevel` names, read
    /// through the clock index, per clock and urgency: the cases on time are never read.
    private func candidates(_ db: Database, minLevel: DeadlineLevel, nowMs: Int64) throws -> [CaseRow] {
        try clockGroups(minLevel, nowMs: nowMs).flatMap { group in
            try db.clockedCases(
                statuses: group.statuses,
                urgency: group.urgency,
                startedBy: group.startedBy,
                limit: 10_000
            )
        }
    }

    /// For each clock (and, for the acknowledgement, each urgency): its statuses and the latest
    /// start of a clock that has run `level`'s share of its time by `nowMs`.
    private func clockGroups(
        _ level: DeadlineLevel,
        nowMs: Int64
    ) -> [(statuses: [Int32], urgency: Int32?, startedBy: Int64)] {
        let share: (Int64) -> Int64 =
            switch level {
            case .half: { $0 / 2 }
            case .threeQuarters: { $0 * 3 / 4 }
            default: { $0 }
            }
        return [DeadlineClock.acknowledge, .answer, .movement].flatMap { clock in
            let statuses = Self.clockedStatuses.filter { DeadlineRule.clock(in: $0)?.0 == clock }.map(\.rawValue)
            // Only the acknowledgement's time depends on urgency.
            let urgencies: [Urgency?] = clock == .acknowledge ? [.immediate, .urgent, .routine, .unspecified] : [nil]
            return urgencies.map { urgency in
                let allowed = directory.deadlines.allowedMs(clock, urgency: urgency ?? .routine)
                return (statuses, urgency?.rawValue, nowMs - share(allowed))
            }
        }
    }

    /// Open cases past their deadline, and at three quarters of it or more (for the status):
    /// counted through the clock index, however many.
    func deadlineCounts(nowMs: Int64 = Clock.nowMs()) throws -> (overdue: Int, dueSoon: Int) {
        try store.read { db in
            func count(_ level: DeadlineLevel) throws -> Int {
                try clockGroups(level, nowMs: nowMs).reduce(0) { total, group in
                    total
                        + (try db.clockedCount(
                            statuses: group.statuses,
                            urgency: group.urgency,
                            startedBy: group.startedBy
                        ))
                }
            }
            let overdue = try count(.overdue)
            return (overdue, try count(.threeQuarters) - overdue)
        }
    }
}

extension CaseUpdate.Change {
    var isInformationRequest: Bool {
        if case .informationRequest = self { return true }
        return false
    }
}

/// What a DEADLINE event records of its deadline (in the event's message id): "clock/start/level".
struct DeadlineMarker {
    var clock: DeadlineClock
    var startedAtMs: Int64
    var level: DeadlineLevel

    init(_ deadline: Deadline) {
        (clock, startedAtMs, level) = (deadline.clock, deadline.startedAtMs, deadline.level)
    }

    init?(_ text: String) {
        let parts = text.split(separator: "/").compactMap { Int64($0) }
        guard parts.count == 3, let clock = Int32(exactly: parts[0]), let level = Int32(exactly: parts[2]) else {
            return nil
        }
        self.clock = DeadlineClock(rawValue: clock)
        startedAtMs = parts[1]
        self.level = DeadlineLevel(rawValue: level)
    }

    var text: String { "\(clock.rawValue)/\(startedAtMs)/\(level.rawValue)" }
}
