import CLibevent
import CaseBridgeThreads
import Foundation
import Synchronization

/// One libevent event_base on its own thread. Everything that touches a connection runs here;
/// other threads hand work in with ``execute(_:)``.
public final class EventLoop: @unchecked Sendable {
    let base: OpaquePointer
    /// Written by `execute` to wake the loop; like the base, kept for the life of the process (a
    /// late `execute` must never write to a descriptor number reused since).
    private let wakeFD: Int32
    private var wakeEvent: OpaquePointer?
    private let jobs = Mutex<[@Sendable () -> Void]>([])
    private var thread: pthread_t?
    private let stopped = DispatchSemaphore(value: 0)
    /// Sockets closing politely on this loop (loop thread only); closed outright when the loop stops.
    var lingering: [ObjectIdentifier: LingeringClose] = [:]
    /// Loop thread only: whether a batch of jobs is running, and what runs once it has (`afterJobs`).
    private var runningJobs = false
    private var afterBatch: [() -> Void] = []

    private static let threadingReady: Bool = {
        // A peer that closes early must not kill the process when we write to its socket.
        signal(SIGPIPE, SIG_IGN)
        return evthread_use_pthreads() == 0
    }()

    public init(name: String) {
        precondition(Self.threadingReady, "libevent pthreads support is missing")
        let config = event_config_new()
        base = event_base_new_with_config(config)
        event_config_free(config)
        wakeFD = cb_wake_fd_new()
        precondition(wakeFD >= 0, "no eventfd for an event loop: \(String(cString: strerror(errno)))")
        wakeEvent = event_new(
            base,
            wakeFD,
            Int16(EV_READ | EV_PERSIST),
            { fd, _, context in
                cb_wake_fd_drain(fd)
                Unmanaged<EventLoop>.fromOpaque(context!).takeUnretainedValue().runJobs()
            },
            Unmanaged.passUnretained(self).toOpaque()
        )
        event_add(wakeEvent, nil)
        let started = DispatchSemaphore(value: 0)
        startThread(named: name) { [self] in
            started.signal()
            event_base_loop(self.base, EVLOOP_NO_EXIT_ON_EMPTY)
            self.stopped.signal()
        }
        started.wait()
        execute { [self] in self.thread = pthread_self() }
        syncWait()
    }

    /// True when called on this loop's thread.
    public var inEventLoop: Bool { thread.map { pthread_equal($0, pthread_self()) != 0 } ?? false }

    /// Runs `job` on the loop thread, soon. Safe from any thread.
    public func execute(_ job: @escaping @Sendable () -> Void) {
        let wasEmpty = jobs.withLock { jobs in
            jobs.append(job)
            return jobs.count == 1
        }
        if wasEmpty { cb_wake_fd_signal(wakeFD) }
    }

    /// Runs `body` on the loop thread once the jobs running now have all run: work that each of them
    /// would repeat, done once for all of them (a connection writes out several calls' responses at
    /// once). Called from anything but one of its jobs (another thread, a timer), it runs `body` at once.
    public func afterJobs(_ body: @escaping () -> Void) {
        // The flag belongs to the loop thread: another thread reads it only after asking whose it is.
        guard inEventLoop, runningJobs else { return body() }
        afterBatch.append(body)
    }

    private func runJobs() {
        let batch = jobs.withLock { jobs in
            let taken = jobs
            jobs.removeAll(keepingCapacity: true)
            return taken
        }
        runningJobs = true
        for job in batch { job() }
        runningJobs = false
        let after = afterBatch
        afterBatch.removeAll(keepingCapacity: true)
        for body in after { body() }
    }

    private func syncWait() {
        let done = DispatchSemaphore(value: 0)
        execute { done.signal() }
        done.wait()
    }

    /// Stops the loop thread after the jobs queued so far. Connections must be closed first.
    public func shutdown() {
        // Two hops: libevent finishes freeing connections (closing their sockets) in finalizer
        // callbacks that the first hop's jobs queue; the loop runs those before the second hop.
        execute { [self] in
            self.execute {
                for linger in Array(self.lingering.values) { linger.finish() }
                event_base_loopexit(self.base, nil)
            }
        }
        stopped.wait()
    }
}

/// A fixed set of loops, one per core by default; connections are spread round robin.
public final class EventLoopGroup: Sendable {
    public let loops: [EventLoop]
    private let nextIndex = Atomic<Int>(0)

    public init(threads: Int = ProcessInfo.processInfo.activeProcessorCount, name: String = "cb-loop") {
        loops = (0..<max(1, threads)).map { EventLoop(name: "\(name)-\($0)") }
    }

    public func next() -> EventLoop {
        loops[nextIndex.add(1, ordering: .relaxed).oldValue % loops.count]
    }

    public func shutdown() { loops.forEach { $0.shutdown() } }
}

/// A one-shot or repeating timer on a loop. Use it on its loop's thread only; keep a reference
/// while it should fire.
public final class LoopTimer: @unchecked Sendable {
    private var event: OpaquePointer?
    private let action: () -> Void

    public init(loop: EventLoop, after delay: Duration, repeating: Bool = false, _ action: @escaping () -> Void) {
        self.action = action
        event = event_new(
            loop.base,
            -1,
            repeating ? Int16(EV_PERSIST) : 0,
            { _, _, context in
                Unmanaged<LoopTimer>.fromOpaque(context!).takeUnretainedValue().action()
            },
            Unmanaged.passUnretained(self).toOpaque()
        )
        var tv = timeval(delay)
        cb_evtimer_add(event, &tv)
    }

    public func cancel() {
        guard let event else { return }
        event_free(event)
        self.event = nil
    }

    deinit { cancel() }
}

extension timeval {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self.init(tv_sec: Int(max(0, seconds)), tv_usec: Int(max(0, attoseconds / 1_000_000_000_000)))
    }
}
