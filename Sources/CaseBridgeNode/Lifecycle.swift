import CaseBridgeProto
import CaseBridgeRPC

/// The case lifecycle: the one transition table both sides enforce, and the pure function that
/// applies a change to a case. No I/O: the services call it inside their store transactions.
public enum Lifecycle {
    /// Legal status changes. Writing the current status again is a no-op, not listed here.
    /// `entered_in_error` is reachable from every other status, terminal ones included: it is how
    /// staff settle a case the two agencies closed differently (a withdrawal crossing a decline).
    public static let caseTransitions: [CaseStatus: Set<CaseStatus>] = [
        .submitted: [.received, .withdrawn, .enteredInError],
        .received: [.acknowledged, .infoRequested, .onHold, .declined, .withdrawn, .enteredInError],
        .acknowledged: [
            .inProgress, .infoRequested, .onHold, .completed, .failed, .declined, .withdrawn,
            .enteredInError,
        ],
        .inProgress: [.infoRequested, .onHold, .completed, .failed, .withdrawn, .enteredInError],
        .infoRequested: [.acknowledged, .inProgress, .onHold, .declined, .failed, .withdrawn, .enteredInError],
        .onHold: [
            .acknowledged, .inProgress, .infoRequested, .completed, .failed, .declined, .withdrawn,
            .enteredInError,
        ],
        .completed: [.enteredInError], .failed: [.enteredInError], .declined: [.enteredInError],
        .withdrawn: [.enteredInError], .enteredInError: [],
    ]

    /// Where the work on a case has ended. A completed case still takes person outcomes (people
    /// rescued by a completed operation are repatriated later) and notes; the others only notes
    /// (and `entered_in_error`).
    public static let terminal: Set<CaseStatus> = [.completed, .failed, .declined, .withdrawn, .enteredInError]

    /// Statuses in which NCCT may record what happened to persons: from acknowledgement on.
    public static let takesOutcomes: Set<CaseStatus> = [
        .acknowledged, .inProgress, .infoRequested, .onHold, .completed,
    ]

    /// Legal changes of one person's status. "Not found" may become "located" when they are found later.
    public static let personTransitions: [PersonStatus: Set<PersonStatus>] = [
        .pending: [.located, .rescued, .sheltered, .notFound, .declinedAssistance],
        .located: [.rescued, .sheltered, .notFound, .declinedAssistance],
        .rescued: [.sheltered, .documentsInProcess, .repatriated, .declinedAssistance],
        .sheltered: [.documentsInProcess, .repatriated, .declinedAssistance],
        .documentsInProcess: [.sheltered, .repatriated, .declinedAssistance],
        .notFound: [.located, .rescued],
        .repatriated: [], .declinedAssistance: [],
    ]

    public static func isTerminal(_ status: CaseStatus) -> Bool { terminal.contains(status) }

    /// NCCT took the case up: it left "submitted" or "received" for work (acknowledged, in
    /// progress, a question, on hold, or an outcome), not for a decline, a withdrawal or an error.
    static func takesUp(from before: CaseStatus, to after: CaseStatus) -> Bool {
        [.submitted, .received].contains(before)
            && [.acknowledged, .inProgress, .infoRequested, .onHold, .completed, .failed].contains(after)
    }

    /// Checks a status change; false when it is the current status (nothing to do).
    public static func checkTransition(from: CaseStatus, to: CaseStatus) throws(RPCError) -> Bool {
        if from == to { return false }
        guard caseTransitions[from]?.contains(to) == true else {
            throw RPCError(.failedPrecondition, "a case cannot go from \(from) to \(to)")
        }
        return true
    }

    /// The state of a case that changes carry forward.
    public struct CaseState: Sendable, Equatable {
        public var status: CaseStatus
        public var step: BusinessStep
        /// In request order.
        public var persons: [PersonState]
        /// Attachments applied so far (at most ``AttachmentRules/maxPerCase``).
        public var attachments: Int

        public init(status: CaseStatus, step: BusinessStep, persons: [PersonState], attachments: Int = 0) {
            self.status = status
            self.step = step
            self.persons = persons
            self.attachments = attachments
        }
    }

    /// Who is making a change, relative to the case.
    public enum Actor: Sendable, Equatable {
        case ncct
        /// The embassy that opened the case.
        case requestingEmbassy
    }

    /// Applies one change to a case, enforcing who may make it and the transition tables.
    public static func apply(
        _ change: CaseUpdate.Change?,
        by actor: Actor,
        to state: CaseState,
        atMs: Int64
    ) throws(RPCError) -> CaseState {
        guard let change else { throw RPCError(.invalidArgument, "change: an update must carry one change") }
        try Authorization.check(change, by: actor)
        var state = state
        // Any update from NCCT proves NCCT has the case, even if its receipt for the request has not
        // been recorded here yet: NCCT can acknowledge faster than the receipt travels back.
        if actor == .ncct, state.status == .submitted { state.status = .received }
        var next = state
        func requireOpen() throws(RPCError) {
            if isTerminal(state.status) {
                throw RPCError(.failedPrecondition, "the case is \(state.status); it takes only notes")
            }
        }
        switch change {
        case .statusChange(let status):
            guard ![.unspecified, .submitted, .received, .withdrawn].contains(status.toStatus),
                CaseStatus.names[status.toStatus.rawValue] != nil
            else {
                throw RPCError(
                    .invalidArgument,
                    "status_change.to_status: \(status.toStatus) cannot be set by an update"
                )
            }
            if try checkTransition(from: state.status, to: status.toStatus) { next.status = status.toStatus }
        case .stepChange(let step):
            guard step.step != .unspecified, BusinessStep.names[step.step.rawValue] != nil else {
                throw RPCError(.invalidArgument, "step_change.step: must be a business step")
            }
            guard [.acknowledged, .inProgress].contains(state.status) else {
                throw RPCError(
                    .failedPrecondition,
                    "business steps need an acknowledged or in-progress case; it is \(state.status)"
                )
            }
            next.status = .inProgress
            next.step = step.step
        case .personOutcomes(let outcomes):
            guard takesOutcomes.contains(state.status) else {
                throw RPCError(
                    .failedPrecondition,
                    state.status == .received
                        ? "acknowledge the case before recording what happened to persons"
                        : "the case is \(state.status); it takes no more person outcomes"
                )
            }
            guard !outcomes.outcomes.isEmpty else {
                throw RPCError(.invalidArgument, "person_outcomes: names no person")
            }
            var seen = Set<String>()
            // A ref that matches no person may be anything staff typed (a name): it is never repeated.
            for (i, outcome) in outcomes.outcomes.enumerated() {
                guard let index = next.persons.firstIndex(where: { $0.personRef == outcome.personRef }) else {
                    throw RPCError(.notFound, "person_outcomes.outcomes[\(i)].person_ref: no such person in the case")
                }
                guard seen.insert(outcome.personRef).inserted else {
                    throw RPCError(.invalidArgument, "person_outcomes: person \(outcome.personRef) appears twice")
                }
                let current = next.persons[index].status
                if current != outcome.status {
                    guard personTransitions[current]?.contains(outcome.status) == true else {
                        throw RPCError(
                            .failedPrecondition,
                            "person \(outcome.personRef) cannot go from \(current) to \(outcome.status)"
                        )
                    }
                    next.persons[index].status = outcome.status
                }
                next.persons[index].note = outcome.note
                next.persons[index].updatedAtMs = atMs
            }
        case .note(let note):
            guard !note.text.isEmpty else { throw RPCError(.invalidArgument, "note.text: empty") }
        case .attachment(let attachment):
            try AttachmentRules.check(attachment)
            guard attachment.personRef.isEmpty || next.persons.contains(where: { $0.personRef == attachment.personRef })
            else {
                throw RPCError(.invalidArgument, "attachment.person_ref: no person \(attachment.personRef) in the case")
            }
            guard next.attachments < AttachmentRules.maxPerCase else {
                throw RPCError(
                    .failedPrecondition,
                    "the case already has \(AttachmentRules.maxPerCase) attachments, the most one case may hold"
                )
            }
            next.attachments += 1
        case .informationRequest(let request):
            try requireOpen()
            guard !request.questions.isEmpty else {
                throw RPCError(.invalidArgument, "information_request.questions: none asked")
            }
            if try checkTransition(from: state.status, to: .infoRequested) { next.status = .infoRequested }
        case .informationProvided(let provided):
            try requireOpen()
            guard !provided.text.isEmpty || !provided.addedPersons.isEmpty else {
                throw RPCError(.invalidArgument, "information_provided: neither text nor persons")
            }
            for (i, person) in provided.addedPersons.enumerated() {
                try Validation.check(person, field: "information_provided.added_persons[\(i)]")
                guard !next.persons.contains(where: { $0.personRef == person.personRef }) else {
                    throw RPCError(
                        .invalidArgument,
                        "information_provided.added_persons[\(i)].person_ref: already in the case"
                    )
                }
                next.persons.append(PersonState.pending(person.personRef, atMs: atMs))
            }
            // The answer goes back to NCCT's desk for a decision.
            if state.status == .infoRequested { next.status = .acknowledged }
        case .withdrawal:
            if try checkTransition(from: state.status, to: .withdrawn) { next.status = .withdrawn }
        }
        return next
    }

    /// A change that would alter nothing: the current status or step again, or withdrawing a
    /// withdrawn case. Staff making one are told so; nothing is recorded or sent.
    public static func isNoOp(_ change: CaseUpdate.Change?, on state: CaseState) -> Bool {
        switch change {
        case .statusChange(let change): change.toStatus == state.status
        case .stepChange(let change): state.status == .inProgress && change.step == state.step
        case .withdrawal: state.status == .withdrawn
        default: false
        }
    }

    /// Persons per status as the store keeps them with the case: "1:4998;3:2".
    static func keptCounts(_ counts: [PersonStatus: Int]) -> String {
        counts.filter { $0.value > 0 }.sorted { $0.key.rawValue < $1.key.rawValue }
            .map { "\($0.key.rawValue):\($0.value)" }.joined(separator: ";")
    }

    static func counts(kept text: String) -> [(PersonStatus, Int)] {
        text.split(separator: ";").compactMap { pair in
            let parts = pair.split(separator: ":")
            guard parts.count == 2, let status = Int32(parts[0]), let count = Int(parts[1]) else { return nil }
            return (PersonStatus(rawValue: status), count)
        }
    }

    /// Number of persons in each status, statuses with none left out, in status order.
    public static func outcomeCounts(_ persons: [PersonState]) -> [OutcomeCount] {
        outcomeCounts(persons.map(\.status))
    }

    public static func outcomeCounts(_ statuses: [PersonStatus]) -> [OutcomeCount] {
        outcomeCounts(Dictionary(grouping: statuses, by: { $0 }).mapValues(\.count))
    }

    /// From persons per status, as the store counts them; statuses with no persons are left out.
    public static func outcomeCounts(_ counts: [PersonStatus: Int]) -> [OutcomeCount] {
        counts.filter { $0.value > 0 }.map { status, number in
            var count = OutcomeCount()
            count.status = status
            count.count = UInt32(clamping: number)
            return count
        }.sorted { $0.status.rawValue < $1.status.rawValue }
    }
}

/// Who may make which change. The identity is the verified certificate's, never a message field.
public enum Authorization {
    public static func check(_ change: CaseUpdate.Change, by actor: Lifecycle.Actor) throws(RPCError) {
        let allowed: Bool =
            switch change {
            case .note, .attachment: true
            case .informationProvided, .withdrawal: actor == .requestingEmbassy
            // The embassy may say its own request should never have existed.
            case .statusChange(let change): actor == .ncct || change.toStatus == .enteredInError
            case .stepChange, .personOutcomes, .informationRequest: actor == .ncct
            }
        guard allowed else {
            throw RPCError(
                .permissionDenied,
                actor == .ncct
                    ? "only the requesting embassy may add information or withdraw"
                    : "only NCCT may change status (beyond entered_in_error), steps and outcomes, "
                        + "or request information"
            )
        }
    }
}

extension PersonState {
    static func pending(_ ref: String, atMs: Int64) -> PersonState {
        var person = PersonState()
        person.personRef = ref
        person.status = .pending
        person.updatedAtMs = atMs
        return person
    }
}

extension CaseUpdate.Change {
    /// A short constant name for logs and the audit log (no content).
    var kindName: String {
        switch self {
        case .statusChange: "status_change"
        case .stepChange: "step_change"
        case .personOutcomes: "person_outcomes"
        case .note: "note"
        case .attachment: "attachment"
        case .informationRequest: "information_request"
        case .informationProvided: "information_provided"
        case .withdrawal: "withdrawal"
        }
    }
}
