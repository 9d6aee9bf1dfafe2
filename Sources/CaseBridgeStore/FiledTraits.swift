import Synchronization

/// What duplicate detection compares for the persons of cases filed lately (`Database.insertCase`'s
/// `matchTraits`), kept opened from the write that sealed them until the duplicate scan first reads
/// them (`Database.newCaseMatchTraits`). The scan then neither finds the row nor unwraps its key and
/// opens it again: that was a fifth of its work a case.
///
/// A case's entry is what its row holds: every write that changes what the row holds for the scan
/// (persons added, personal data purged, the index cleared) forgets it first, before its commit. A
/// case the scan does not find here is read from the database, as before. In memory only, at most
/// `limit` cases.
final class FiledTraits: Sendable {
    private struct State {
        var traits: [String: (order: Int, traits: [UInt8])] = [:]
        /// The cases kept, in the order they were filed (some since taken or forgotten).
        var filed: [(order: Int, caseID: String)] = []
        var first = 0  // in `filed`: what comes before has been dropped
        var next = 0
    }
    private let state = Mutex(State())
    let limit: Int

    init(limit: Int) { self.limit = limit }

    /// Past the limit a new case is not kept: a scan far behind takes the oldest first, and each
    /// take makes room.
    func keep(_ traits: [UInt8], caseID: String) {
        state.withLock { state in
            guard state.traits.count < limit || state.traits[caseID] != nil else { return }
            state.traits[caseID] = (state.next, traits)
            state.filed.append((state.next, caseID))
            state.next += 1
            if state.filed.count - state.first > 2 * limit {
                // Cases forgotten before the scan took them (persons added at once): only the kept remain.
                state.filed = state.traits.map { ($0.value.order, $0.key) }.sorted { $0.order < $1.order }
                state.first = 0
            }
        }
    }

    func forget(_ caseID: String) { _ = state.withLock { $0.traits.removeValue(forKey: caseID) } }

    func forgetAll() { state.withLock { $0 = State() } }

    /// The case's entry, dropped as it is taken (the scan reads a new case once), with every entry
    /// kept before it: the writer files cases in the order of their events, so the scan has read
    /// those already, or they were never committed (a write that failed after filing).
    func take(_ caseID: String) -> [UInt8]? {
        state.withLock { state in
            guard let taken = state.traits.removeValue(forKey: caseID) else { return nil }
            while state.first < state.filed.count, state.filed[state.first].order < taken.order {
                let (order, earlier) = state.filed[state.first]
                if state.traits[earlier]?.order == order { state.traits[earlier] = nil }
                state.first += 1
            }
            if state.first > 1_024, state.first * 2 > state.filed.count {
                state.filed.removeFirst(state.first)
                state.first = 0
            }
            return taken.traits
        }
    }

    var count: Int { state.withLock { $0.traits.count } }

    /// The length of the order of filing still held (tests: bounded however cases come and go).
    var orderHeld: Int { state.withLock { $0.filed.count - $0.first } }
}
