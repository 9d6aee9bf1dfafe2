import CLibevent
import Foundation
import Synchronization

/// Gives freed heap memory back to the system after a burst (a flood of large messages, a peer
/// that made us buffer), so the process's resident size returns near its baseline instead of
/// staying at the peak: glibc keeps freed memory in its arenas until asked.
public enum MemoryReturn {
    private static let lastTrim = Mutex<ContinuousClock.Instant?>(nil)
    /// At most one trim per interval: each walks the heap.
    static let interval: Duration = .seconds(2)

    /// Trims in the background, unless a trim ran within the interval.
    public static func soon() {
        let due = lastTrim.withLock { last in
            let now = ContinuousClock.now
            guard last.map({ now - $0 >= interval }) ?? true else { return false }
            last = now
            return true
        }
        if due { DispatchQueue.global(qos: .utility).async { _ = cb_malloc_trim() } }
    }
}
