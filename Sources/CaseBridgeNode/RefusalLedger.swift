import CaseBridgeNet
import Logging
import Synchronization

/// Audits and logs what the servers refused, aggregated so that a flood of refusals costs a few
/// rows instead of one fsync'd row each: the first refusal of a kind from a source is written at
/// once, the rest of that window are counted and written as one entry when the window ends.
final class RefusalLedger: Sendable {
    private struct Key: Hashable {
        let event: String
        let source: String
    }
    private struct Tally {
        var count = 0
        var lastReason = ""
    }

    /// Sources tracked at once; past it, refusals of a kind are counted under source "*", so that
    /// many addresses cannot grow the table.
    static let maxSources = 1_000
    let window: Duration
    private let tallies = Mutex<[Key: Tally]>([:])
    private let write: @Sendable (_ event: String, _ source: String, _ detail: String) async -> Void
    private let logger: Logger
    private let flusher = Mutex<Task<Void, Never>?>(nil)

    init(
        window: Duration = .seconds(60),
        logger: Logger,
        write: @escaping @Sendable (_ event: String, _ source: String, _ detail: String) async -> Void
    ) {
        self.window = window
        self.logger = logger
        self.write = write
        flusher.withLock { task in
            task = Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: window)
                    await self?.flush()
                }
            }
        }
    }

    func record(_ refusal: Refusal) {
        let first = tallies.withLock { tallies -> Bool in
            var key = Key(event: refusal.kind.event, source: refusal.source)
            if tallies[key] == nil, tallies.count >= Self.maxSources { key = Key(event: key.event, source: "*") }
            guard var tally = tallies[key] else {
                tallies[key] = Tally()
                return true
            }
            tally.count += 1
            tally.lastReason = refusal.reason
            tallies[key] = tally
            return false
        }
        guard first else { return }
        logger.warning(
            "refused",
            metadata: [
                "event": "\(refusal.kind)", "source": "\(refusal.source)",
                "reason": "\(refusal.reason)",
            ]
        )
        Task { await write(refusal.kind.event, refusal.source, refusal.reason) }
    }

    /// Writes one entry per source that was refused again during the window.
    func flush() async {
        let due = tallies.withLock { tallies -> [(Key, Tally)] in
            let due = tallies.filter { $0.value.count > 0 }
            // Sources quiet for a whole window start afresh; the others keep being counted.
            tallies = due.mapValues { _ in Tally() }
            return Array(due)
        }
        for (key, tally) in due {
            let detail = "\(tally.count) more in \(window) (last: \(tally.lastReason))"
            logger.warning(
                "refused again",
                metadata: [
                    "event": "\(key.event)", "source": "\(key.source)",
                    "count": "\(tally.count)", "reason": "\(tally.lastReason)",
                ]
            )
            await write(key.event, key.source, detail)
        }
    }

    func stop() async {
        flusher.withLock { $0?.cancel() }
        await flush()
    }
}
