import Synchronization

/// What one verified peer identity may hold at once, whatever number of connections it spreads
/// it over, so that one member cannot take what the others need. Strangers never get this far:
/// they are bounded by the listener (connections, handshakes per address).
public struct PeerLimits: Sendable, Equatable {
    /// Connections open at once from one identity.
    public var maxConnections = 16
    /// Calls in flight at once from one identity, over all its connections.
    public var maxConcurrentCalls = 200
    /// Calls in flight at once from one identity to methods marked expensive (lists, watches,
    /// reflection): they read much and hold a worker longer.
    public var maxExpensiveCalls = 4
    /// Request bytes accepted from one identity per minute (a token bucket that refills evenly,
    /// holding at most ten seconds' worth, or one largest message, whichever is more).
    public var maxBytesPerMinute = 64 * 1024 * 1024

    public init() {}

    /// For a local socket, where every caller shares one identity.
    public static let unlimited: PeerLimits = {
        var limits = PeerLimits()
        limits.maxConnections = .max
        limits.maxConcurrentCalls = .max
        limits.maxExpensiveCalls = .max
        limits.maxBytesPerMinute = 1 << 50
        return limits
    }()
}

/// Counts what each peer identity holds; answers whether one more is allowed. Shared by every
/// connection of a server.
final class PeerAdmission: Sendable {
    struct Usage {
        var connections = 0
        var calls = 0
        var expensiveCalls = 0
        var tokens: Double
        var refilledAt = ContinuousClock.now
    }

    let limits: PeerLimits
    /// The most bytes a peer may send at once: a burst, not a minute's worth in a second.
    let burstBytes: Double
    private let usage = Mutex<[String: Usage]>([:])

    init(limits: PeerLimits, maxMessageBytes: Int) {
        self.limits = limits
        burstBytes = Double(max(limits.maxBytesPerMinute / 6, maxMessageBytes + 64 * 1024))
    }

    /// nil when admitted, else why not.
    func openConnection(_ peer: String) -> String? {
        usage.withLock { all in
            var entry = all[peer] ?? Usage(tokens: burstBytes)
            guard entry.connections < limits.maxConnections else {
                return "\(limits.maxConnections) connections from \(peer) are open already"
            }
            entry.connections += 1
            all[peer] = entry
            return nil
        }
    }

    func closeConnection(_ peer: String) {
        usage.withLock { all in
            all[peer]?.connections -= 1
            if let entry = all[peer], entry.connections == 0, entry.calls == 0 { all.removeValue(forKey: peer) }
        }
    }

    func openCall(_ peer: String, expensive: Bool) -> String? {
        usage.withLock { all in
            guard var entry = all[peer] else { return nil }
            guard entry.calls < limits.maxConcurrentCalls else {
                return "\(limits.maxConcurrentCalls) calls from \(peer) are in flight already; retry when some finish"
            }
            if expensive {
                guard entry.expensiveCalls < limits.maxExpensiveCalls else {
                    return "\(limits.maxExpensiveCalls) list, watch or reflection calls from \(peer) "
                        + "are in flight already"
                }
                entry.expensiveCalls += 1
            }
            entry.calls += 1
            all[peer] = entry
            return nil
        }
    }

    func closeCall(_ peer: String, expensive: Bool) {
        usage.withLock { all in
            all[peer]?.calls -= 1
            if expensive { all[peer]?.expensiveCalls -= 1 }
        }
    }

    /// How long until the peer's budget holds `bytes` again (at the refill rate), at most `cap`.
    func refillTime(for bytes: Int, cap: Duration = .seconds(5)) -> Duration {
        let seconds = Double(bytes) * 60 / Double(max(1, limits.maxBytesPerMinute))
        return min(cap, .milliseconds(Int(min(seconds, 3_600) * 1000) + 1))
    }

    /// Takes `bytes` from the peer's budget; nil when it had them.
    func spend(_ bytes: Int, by peer: String, now: ContinuousClock.Instant = .now) -> String? {
        usage.withLock { all in
            guard var entry = all[peer] else { return nil }
            let elapsed =
                Double((now - entry.refilledAt).components.seconds)
                + Double((now - entry.refilledAt).components.attoseconds) / 1e18
            entry.tokens = min(burstBytes, entry.tokens + Double(limits.maxBytesPerMinute) * elapsed / 60)
            entry.refilledAt = now
            guard entry.tokens >= Double(bytes) else {
                all[peer] = entry
                return "\(peer) sent more than \(limits.maxBytesPerMinute) bytes in a minute; slow down"
            }
            entry.tokens -= Double(bytes)
            all[peer] = entry
            return nil
        }
    }
}
