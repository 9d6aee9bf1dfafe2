import CaseBridgeStore
import Synchronization

/// The request ids NCCT's node has taken for writing, as a Bloom filter: a new request is told from
/// a sender's retry without reading the store (that read was about 8 % of a new submit's CPU).
/// The filter may say "maybe" of an id it never took (then the store is read, as before), and never
/// "no" of one it took. Until the ids stored before this start are loaded (`load(from:)`), it says
/// "maybe" of every id.
///
/// Its size is fixed, so the node's memory does not grow with its history: at a million ids about
/// one new request in 6,000 is read for nothing, at three million one in 120; past that the share
/// grows towards a read for every request (as before the filter), never towards a wrong answer. The
/// writer checks again inside the write in any case.
final class KnownRequests: Sendable {
    static let bits = 1 << 25  // 4 MiB
    static let probes = 4

    private let state = Mutex(State())

    private struct State {
        var words = [UInt64](repeating: 0, count: KnownRequests.bits / 64)
        var loaded = false
    }

    func add(_ id: String) {
        let hashes = Self.hashes(id)
        state.withLock { state in
            for probe in 0..<Self.probes {
                let bit = Self.bit(probe, hashes)
                state.words[bit.word] |= bit.mask
            }
        }
    }

    /// False only when `id` was never added and the ids stored before this start are loaded.
    func mayHold(_ id: String) -> Bool {
        let hashes = Self.hashes(id)
        return state.withLock { state in
            guard state.loaded else { return true }
            return (0..<Self.probes).allSatisfy { probe in
                let bit = Self.bit(probe, hashes)
                return state.words[bit.word] & bit.mask != 0
            }
        }
    }

    /// Adds the id of every case `store` holds, a read a page (so that checkpoints go on meanwhile);
    /// from then on, an id not added is told apart. Returns how many it added; nil when cancelled,
    /// which leaves every id "maybe".
    func load(from store: CaseStore, pageSize: Int = 10_000) throws -> Int? {
        var after = "", count = 0
        while !Task.isCancelled {
            let page = try store.read { try $0.caseIDs(after: after, limit: pageSize) }
            for id in page { add(id) }
            count += page.count
            guard page.count == pageSize, let last = page.last else {
                state.withLock { $0.loaded = true }
                return count
            }
            after = last
        }
        return nil
    }

    /// Two hashes under this process's random seed (a sender cannot aim its ids at chosen bits); the
    /// probes step by the second, odd so that they never repeat one bit.
    private static func hashes(_ id: String) -> (first: UInt64, step: UInt64) {
        var first = Hasher(), second = Hasher()
        first.combine(id)
        second.combine(1 as UInt8)
        second.combine(id)
        return (UInt64(bitPattern: Int64(first.finalize())), UInt64(bitPattern: Int64(second.finalize())) | 1)
    }

    /// Where probe `probe` of an id with these hashes falls: its word, and its bit in the word.
    private static func bit(_ probe: Int, _ hashes: (first: UInt64, step: UInt64)) -> (word: Int, mask: UInt64) {
        let bit = (hashes.first &+ UInt64(probe) &* hashes.step) & UInt64(bits - 1)
        return (Int(bit >> 6), 1 << (bit & 63))
    }
}
