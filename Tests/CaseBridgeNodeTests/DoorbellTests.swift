import Foundation
import Synchronization
import Testing
@testable import CaseBridgeNode

@Suite("A delivery worker's doorbell")
struct DoorbellTests {
    /// A delivery worker waits for the time of its next attempt, or a ring. Its wait must end when the
    /// time is up even when the time is so short that the alarm goes off before the wait has begun:
    /// the worker would otherwise sleep until the next message for that peer, however long that is.
    @Test("a wait ends when its time is up, however short the time")
    func shortWaitsEnd() async throws {
        let doorbell = Doorbell()
        let waits = 20_000
        let ended = Atomic<Int>(0)
        Task.detached {
            for i in 0..<waits {
                await doorbell.wait(timeout: i.isMultiple(of: 2) ? .zero : .microseconds(1))
                ended.add(1, ordering: .relaxed)
            }
        }
        let deadline = Date().addingTimeInterval(20)
        while ended.load(ordering: .relaxed) < waits, Date() < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(ended.load(ordering: .relaxed) == waits, "a wait never ended: the worker would be stuck")
        doorbell.ring()  // frees a stuck wait, so that the task ends
    }

    @Test("a ring ends the wait at once, and a ring before the wait is not lost")
    func rings() async throws {
        let doorbell = Doorbell()
        doorbell.ring()
        let start = ContinuousClock.now
        await doorbell.wait(timeout: .seconds(30))
        Task {
            try await Task.sleep(for: .milliseconds(50))
            doorbell.ring()
        }
        await doorbell.wait(timeout: .seconds(30))
        #expect(ContinuousClock.now - start < .seconds(10))
    }
}
