import CLibevent
import Foundation
import Synchronization

/// Gives freed heap memory back to the system after a burst (a flood of large messages, a peer
/// that made us buffer), so the process's resident size returns near its baseline instead of
/// staying at the peak: glibc keeps freed memory in its arenas until asked.
public enum MemoryReturn {
    private struct State {
        var lastTrim: ContinuousClock.Instant?
        var trailing = false
    }
    private static let state = Mutex(State())
    /// At most one trim per interval: each walks the heap.
    static let interval: Duration = .seconds(2)

    /// Trims in the background now, or, when a trim ran within the interval, once at its end: the
    /// last of a burst of frees is returned too, not only the first.
    public static func soon() {
        let delay = state.withLock { state -> Duration? in
            let now = ContinuousClock.now
            guard let last = state.lastTrim, now - last < interval else {
                state.lastTrim = now
                return .zero
            }
            guard !state.trailing else { return nil }
            state.trailing = true
            return interval - (now - last)
        }
        guard let delay else { return }
        let wait = DispatchTimeInterval.nanoseconds(Int(delay / .nanoseconds(1)))
        DispatchQueue.global(qos: .utility).asyncAfter(deadline: .now() + wait) {
            state.withLock { state in
                if delay > .zero {
                    state.trailing = false
                    state.lastTrim = ContinuousClock.now
                }
            }
            _ = cb_malloc_trim()
        }
    }
}
