import CaseBridgeProto

/// What an operator sees of a case: its shape (ids, statuses, steps, counts, times, who acted,
/// deliveries) and none of the victims' personal data. Built by copying only fields known to say
/// nothing about a person, so a field added to the contract later stays withheld until named here.
enum PersonalData {
    /// Stands where a text was withheld, so that staff see something was there.
    static let withheld = "(withheld)"

    static func withheld(_ view: Case) -> Case {
        var kept = view
        kept.request = view.request.map(withheld)
        kept.persons = view.persons.map { person in
            var state = PersonState()
            state.personRef = person.personRef
            state.status = person.status
            state.updatedAtMs = person.updatedAtMs
            state.note = mark(person.note)
            return state
        }
        kept.history = view.history.map(withheld)
        kept.refusedUpdates = view.refusedUpdates.map { refused in
            var copy = refused
            copy.update = refused.update.map(withheld)
            return copy
        }
        return kept
    }

    static func withheld(_ request: InterventionRequest) -> InterventionRequest {
        var kept = InterventionRequest()
        kept.requestID = request.requestID
        kept.originNode = request.originNode
        kept.kind = request.kind
        kept.urgency = request.urgency
        kept.persons = request.persons.map(withheld)
        if let location = request.location {
            var place = Location()
            place.province = location.province
            place.district = location.district
            kept.location = place
        }
        kept.summary = mark(request.summary)
        kept.indicators = request.indicators
        if let source = request.source {
            var copy = InformationSource()
            copy.kind = source.kind
            copy.receivedAtMs = source.receivedAtMs
            kept.source = copy
        }
        if let consent = request.consent {
            var copy = Consent()
            copy.basis = consent.basis
            kept.consent = copy
        }
        kept.createdAtMs = request.createdAtMs
        kept.originReference = request.originReference
        kept.contact = request.contact
        kept.test = request.test
        kept.filedBy = request.filedBy
        return kept
    }

    static func withheld(_ person: Person) -> Person {
        var kept = Person()
        kept.personRef = person.personRef
        kept.fullName = mark(person.fullName)  // so a list says the name is withheld, not missing
        return kept
    }

    static func withheld(_ update: CaseUpdate) -> CaseUpdate {
        var kept = CaseUpdate()
        kept.updateID = update.updateID
        kept.caseID = update.caseID
        kept.sequence = update.sequence
        kept.actorNode = update.actorNode
        kept.occurredAtMs = update.occurredAtMs
        kept.author = update.author
        kept.skippedSequences = update.skippedSequences
        switch update.change {
        case .statusChange(let change):
            var copy = StatusChange()
            copy.toStatus = change.toStatus
            copy.reason = mark(change.reason)
            kept.change = .statusChange(copy)
        case .stepChange(let change):
            var copy = StepChange()
            copy.step = change.step
            copy.note = mark(change.note)
            kept.change = .stepChange(copy)
        case .personOutcomes(let outcomes):
            var copy = PersonOutcomes()
            copy.outcomes = outcomes.outcomes.map { outcome in
                var one = PersonOutcome()
                one.personRef = outcome.personRef
                one.status = outcome.status
                one.note = mark(outcome.note)
                return one
            }
            kept.change = .personOutcomes(copy)
        case .note(let note):
            var copy = Note()
            copy.text = mark(note.text)
            kept.change = .note(copy)
        case .informationRequest(let request):
            var copy = InformationRequest()
            copy.questions = request.questions.map(mark)
            kept.change = .informationRequest(copy)
        case .informationProvided(let provided):
            var copy = InformationProvided()
            copy.text = mark(provided.text)
            copy.addedPersons = provided.addedPersons.map(withheld)
            kept.change = .informationProvided(copy)
        case .withdrawal(let withdrawal):
            var copy = Withdrawal()
            copy.reason = mark(withdrawal.reason)
            kept.change = .withdrawal(copy)
        case .attachment(let attachment):
            // That there is a file, its type and which person: never the file, its name or caption.
            var copy = Attachment()
            copy.contentType = attachment.contentType
            copy.personRef = attachment.personRef
            copy.fileName = mark(attachment.fileName)
            copy.caption = mark(attachment.caption)
            kept.change = .attachment(copy)
        case nil:
            break
        }
        return kept
    }

    static func withheld(_ entry: InboxEntry) -> InboxEntry {
        var kept = entry
        kept.update = entry.update.map(withheld)
        return kept
    }

    static func withheld(_ event: CaseEvent) -> CaseEvent {
        var kept = event
        kept.update = event.update.map(withheld)
        return kept
    }

    private static func mark(_ text: String) -> String { text.isEmpty ? "" : withheld }
}
