import CaseBridgeMatching
import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeStore
import Foundation

/// Duplicate detection at NCCT: the same victim reported by two embassies (or twice by one) must
/// not become two operations. Each case that arrives is compared, person by person, with the persons
/// of every open case; likely matches wait for NCCT staff to confirm or dismiss. The scan follows the
/// node's events (a cursor kept with its findings), so it survives restarts and never slows a receipt.
extension CaseTracker {
    /// A document, phone or (date of birth, name word) that more persons share than this is no sign
    /// of one person (a shelter's phone, a common name in a common year) and finds no candidates:
    /// it keeps the work per arriving case bounded when thousands share a value.
    static let maxPersonsPerTerm = 50

    /// Events the duplicate scan reads without a match before it writes how far it has read.
    static let eventsScannedPerWrite: Int64 = 1_000

    /// Compares the cases opened since the last scan with the open cases; returns the matches found.
    @discardableResult
    func scanForDuplicates() async throws -> Int {
        guard let index = matchIndex else { return 0 }
        let register: MatchIndex.Register = { change in try await self.store.write(change) }
        var found = 0
        while !Task.isCancelled {
            let known = duplicateScan.withLock { $0 }
            let scanned = try store.read { db -> (Int64, Int64, Int64, [MatchRow], Bool)? in
                // The index is brought up to the same snapshot the events are read from: every case
                // before the one scanned is in it.
                guard try index.catchUp(db) else { return nil }
                let saved = try known?.saved ?? db.duplicatesScannedThrough()
                let after = known?.read ?? saved
                let events = try db.events(after: after, limit: 200)
                // Held for the whole read: a purge's `forgetComparedCases` waits for it, then forgets all.
                let matches = try comparedCases.withLock { compared in
                    // A case with an event since it was kept may have new persons or another status.
                    for event in events { compared.forget(event.caseID) }
                    var matches: [MatchRow] = []
                    for event in events where event.kind == CaseEventKind.opened.rawValue {
                        matches += try Self.likelyMatches(of: event.caseID, db, index, &compared)
                    }
                    return matches
                }
                return (after, saved, events.last?.eventID ?? after, matches, events.count == 200)
            }
            guard case let (after, saved, through, matches, more)? = scanned else {
                // The index's memory filled up before it had read the whole log: written out first.
                try await index.writeRunsIfDue(register: register)
                continue
            }
            // The cursor is written with the matches found, or after many events without one: cases that
            // arrive one at a time would otherwise each cost a second commit. After a restart the scan
            // reads again what it had not written, and finds the same (a match is recorded once).
            let write = through > after && (!matches.isEmpty || through - saved >= Self.eventsScannedPerWrite)
            if write {
                try await store.write { db in
                    for match in matches { try db.insertMatch(match) }
                    // Kept with their finding time, not audited: the node found them, nobody acted.
                    try db.setDuplicatesScannedThrough(through)
                }
            }
            duplicateScan.withLock { $0 = (read: through, saved: write ? through : saved) }
            try await index.writeRunsIfDue(register: register)
            found += matches.count
            if !more { return found }
        }
        return found
    }

    /// The persons of `caseID` who resemble a person of another open case, most alike first. A likely
    /// match always agrees on more than a name (a name alone scores 0.6, under the threshold), so the
    /// candidates are the persons with the same document, the same phone, or a word of the name and a
    /// date of birth that agrees (`SearchTerms.lookupTerms`): one pass over the blind index for the
    /// whole case. Each case's persons are read as their kept traits (`TraitsRecord`), not from the
    /// request and its updates.
    static func likelyMatches(
        of caseID: String,
        _ db: Database,
        _ index: MatchIndex,
        _ compared: inout ComparedCases
    ) throws -> [MatchRow] {
        try Task.checkCancellation()
        let now = Clock.nowMs()
        let persons = try Self.comparedPersons(db.newCaseMatchTraits(caseID), of: caseID)
        let keys = try db.termKeys()
        let queries = persons.map { keys(SearchTerms.lookupTerms($0.traits)) }
        let candidates = try index.searchPersons(
            anyOfEach: queries,
            excludingCase: caseID,
            maxPersonsPerTerm: maxPersonsPerTerm
        )
        var matches: [MatchRow] = []
        for (person, found) in zip(persons, candidates) {
            let key = PersonKey(person.traits)
            for candidate in found {
                let theirs = try compared.key(of: candidate, ifCouldBeLike: key) {
                    let theirs = try db.matchTraits(candidate.caseID, whenStatusIn: openStatuses)
                    return try comparedPersons(theirs, of: candidate.caseID)
                }
                guard let theirs else { continue }
                let likeness = Likeness(key, theirs)
                guard likeness.isLikely else { continue }
                matches.append(
                    MatchRow(
                        caseID: caseID,
                        personRef: person.personRef,
                        otherCaseID: candidate.caseID,
                        otherPersonRef: candidate.personRef,
                        score: likeness.score,
                        agreeing: likeness.agreeing.map(\.rawValue),
                        conflicting: likeness.conflicting.map(\.rawValue),
                        foundAtMs: now
                    )
                )
            }
        }
        return matches.sorted { $0.score > $1.score }
    }

    /// Other cases' persons as the scan compares them, kept from one read of the scan to the next: new
    /// cases meet the same candidates (real names share family names and birth years), so each is read,
    /// opened and keyed once, not once for every new person who shares a term with them. A case is read
    /// again after any event of it (persons added, a status changed) and all are forgotten when
    /// personal data is purged. In memory only, at most `maxCases` (`limits.duplicate_compared_cases`).
    struct ComparedCases {
        private struct Person {
            let personRef: String
            let traits: PersonTraits
            let withoutNames: PersonKey
            var key: PersonKey?  // with names: made once one comparison needs it
        }
        private var cases: [String: [Person]] = [:]
        /// Cases kept at most: past that, all are forgotten and read again.
        let maxCases: Int

        init(maxCases: Int) { self.maxCases = maxCases }

        mutating func forget(_ caseID: String) { cases[caseID] = nil }

        mutating func forgetAll() { cases.removeAll() }

        /// The key of `candidate` when they could be like `key` (`Likeness.couldBeLikely`); nil when
        /// they cannot, or their case (`read`) has no such person to compare.
        mutating func key(
            of candidate: MatchIndex.Posting,
            ifCouldBeLike key: PersonKey,
            read: () throws -> [TraitsRecord.Person]
        ) throws -> PersonKey? {
            if cases[candidate.caseID] == nil {
                if cases.count >= maxCases { cases.removeAll(keepingCapacity: true) }
                cases[candidate.caseID] = try read().map {
                    Person(personRef: $0.personRef, traits: $0.traits, withoutNames: .withoutNames($0.traits))
                }
            }
            guard let persons = cases[candidate.caseID],
                let index = persons.firstIndex(where: { $0.personRef == candidate.personRef }),
                Likeness.couldBeLikely(key, persons[index].withoutNames)
            else { return nil }
            if let known = persons[index].key { return known }
            let made = PersonKey(persons[index].traits)
            cases[candidate.caseID]?[index].key = made
            return made
        }
    }

    /// Forgets every case's persons kept for comparison, those of cases purged just now among them.
    func forgetComparedCases() { comparedCases.withLock { $0.forgetAll() } }

    /// Only an open case's persons are compared: a closed case's are not opened at all.
    private static let openStatuses = Set(Lifecycle.open.map(\.rawValue))

    /// A case's persons as duplicate detection compares them, from what the store holds for them (nil:
    /// nothing to compare, see `Database.matchTraits`).
    private static func comparedPersons(_ record: [UInt8]?, of caseID: String) throws -> [TraitsRecord.Person] {
        guard let record else { return [] }
        do { return try TraitsRecord.decode(record) } catch {
            throw RPCError(.dataLoss, "the persons kept for duplicate detection of case \(caseID) do not read")
        }
    }

    /// A page of matches for NCCT staff, with both persons and both cases (recorded as looked at).
    public func matches(_ request: ListMatchesRequest, by member: StaffMember) async throws -> MatchPage {
        try requireNCCT()
        let limit = request.limit == 0 ? 20 : Int(min(request.limit, 200))
        if !request.caseID.isEmpty, !Validation.isUUID(request.caseID) {
            throw RPCError(.invalidArgument, "case_id: not a case id")
        }
        let state: MatchRow.State?
        switch request.state {
        case _ where request.allStates: state = nil
        case .unspecified, .open: state = .open
        case .confirmed: state = .confirmed
        case .dismissed: state = .dismissed
        default: throw RPCError(.invalidArgument, "state: \(request.state.rawValue) is not a match state")
        }
        let page: MatchPage = try store.read { db in
            let (rows, total) = try db.matches(
                state: state,
                caseID: request.caseID.isEmpty ? nil : request.caseID,
                limit: limit,
                offset: Int(request.offset)
            )
            var page = MatchPage()
            page.total = UInt32(clamping: total)
            page.matches = try rows.map { try self.personMatch($0, db) }
            return page
        }
        let seen = Set(page.matches.flatMap { [$0.caseID, $0.otherCaseID] }).sorted()
        try await recordAccess(seen, what: "duplicate review", by: member)
        return page
    }

    /// Confirms or dismisses a match. A confirmation tells each requesting embassy, in a note on its
    /// own case, only that NCCT linked one of its persons to another report.
    public func decideMatch(_ request: DecideMatchRequest, by member: StaffMember) async throws -> PersonMatch {
        try requireNCCT()
        let decision: MatchRow.State
        switch request.decision {
        case .confirmed: decision = .confirmed
        case .dismissed: decision = .dismissed
        default:
            throw RPCError(.invalidArgument, "decision: give MATCH_STATE_CONFIRMED or MATCH_STATE_DISMISSED")
        }
        guard let matchID = Int64(exactly: request.matchID), matchID > 0 else {
            throw RPCError(.invalidArgument, "match_id: not a match id")
        }
        let match: MatchRow = try await store.write { db in
            guard let match = try db.match(matchID) else {
                throw RPCError(.notFound, "no match \(matchID) here; list them with `casebridge duplicates`")
            }
            guard match.state == .open else {
                throw RPCError(
                    .failedPrecondition,
                    "match \(matchID) was already \(match.state == .confirmed ? "confirmed" : "dismissed")"
                        + " by \(match.decidedBy)"
                )
            }
            try db.decideMatch(matchID, decision, by: member.displayName, atMs: Clock.nowMs())
            try db.appendAudit(
                event: decision == .confirmed ? "duplicate.confirmed" : "duplicate.dismissed",
                actor: member.auditActor,
                subject: match.caseID,
                outcome: "ok",
                detail: "match=\(matchID) other=\(match.otherCaseID)",
                atMs: Clock.nowMs()
            )
            return match
        }
        if decision == .confirmed {
            for (caseID, personRef) in [(match.caseID, match.personRef), (match.otherCaseID, match.otherPersonRef)] {
                var note = Note()
                note.text =
                    "NCCT linked person \(personRef) of this case to another report of the same person;"
                    + " NCCT will work them as one."
                var update = CaseUpdate()
                update.caseID = caseID
                update.change = .note(note)
                _ = try await applyChange(update, by: member)
            }
        }
        try await recordAccess([match.caseID, match.otherCaseID], what: "duplicate review", by: member)
        return try store.read { db in
            guard let row = try db.match(matchID) else { throw RPCError(.notFound, "match \(matchID) is gone") }
            return try self.personMatch(row, db)
        }
    }

    private func requireNCCT() throws {
        guard me.role == .ncct else {
            throw RPCError(.failedPrecondition, "duplicate detection runs at NCCT's node, not at \(me.id)")
        }
    }

    private func personMatch(_ row: MatchRow, _ db: Database) throws -> PersonMatch {
        var match = PersonMatch()
        match.matchID = UInt64(row.matchID)
        match.caseID = row.caseID
        match.personRef = row.personRef
        match.otherCaseID = row.otherCaseID
        match.otherPersonRef = row.otherPersonRef
        match.score = UInt32((row.score * 1000).rounded())
        match.agreeingFields = row.agreeing
        match.conflictingFields = row.conflicting
        match.state =
            switch row.state {
            case .open: .open
            case .confirmed: .confirmed
            case .dismissed: .dismissed
            }
        match.foundAtMs = row.foundAtMs
        match.decidedBy = row.decidedBy
        match.decidedAtMs = row.decidedAtMs
        if let caseRow = try db.caseRow(row.caseID) {
            match.caseSummary = try summary(caseRow, db)
            match.person = try Self.persons(of: caseRow, db).first { $0.personRef == row.personRef }
        }
        if let otherRow = try db.caseRow(row.otherCaseID) {
            match.otherCaseSummary = try summary(otherRow, db)
            match.otherPerson = try Self.persons(of: otherRow, db).first { $0.personRef == row.otherPersonRef }
        }
        return match
    }
}
