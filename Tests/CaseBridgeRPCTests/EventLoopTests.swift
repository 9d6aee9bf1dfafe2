import CaseBridgeNet
import Foundation
import Synchronization
import Testing

@Suite("Event loop")
struct EventLoopTests {
    @Test("work put after the jobs runs once the whole batch has run, in the order it was put")
    func afterJobs() {
        let loop = EventLoop(name: "cb-test-loop")
        defer { loop.shutdown() }
        let log = Mutex<[String]>([])
        let holding = DispatchSemaphore(value: 0), queued = DispatchSemaphore(value: 0)
        // The first job holds the loop while the next three are queued: those three are one batch.
        loop.execute {
            queued.signal()
            holding.wait()
            log.withLock { $0.append("first") }
        }
        queued.wait()
        loop.execute {
            log.withLock { $0.append("a") }
            loop.afterJobs { log.withLock { $0.append("after a") } }
        }
        loop.execute {
            log.withLock { $0.append("b") }
            loop.afterJobs { log.withLock { $0.append("after b") } }
        }
        loop.execute { log.withLock { $0.append("c") } }
        let done = DispatchSemaphore(value: 0)
        holding.signal()
        loop.execute {
            loop.afterJobs { log.withLock { $0.append("after last") } }
            done.signal()
        }
        done.wait()
        loop.execute { done.signal() }
        done.wait()
        #expect(log.withLock { $0 } == ["first", "a", "b", "c", "after a", "after b", "after last"])
    }

    @Test("called from another thread, even while the loop runs a job, the work runs at once")
    func afterJobsOutsideJobs() {
        let loop = EventLoop(name: "cb-test-loop")
        defer { loop.shutdown() }
        let holding = DispatchSemaphore(value: 0), running = DispatchSemaphore(value: 0)
        loop.execute {
            running.signal()
            holding.wait()
        }
        running.wait()
        var ran = false
        loop.afterJobs { ran = true }
        holding.signal()
        #expect(ran)
    }
}
