import CaseBridgeThreads
import Foundation
import Synchronization

/// Threads that run call handlers, away from the event loops and from Swift's cooperative pool
/// (which has one thread per core: a handler blocked in SQLite or decoding a large message there
/// would stall every other task in the process).
///
/// Work is queued per lane, one lane per peer identity, and the threads take one job from each
/// lane with work in turn: a peer with 500 calls in flight gets the same share of the threads as
/// a peer with one, so one member's flood cannot push another member's calls to the back. One lane
/// runs on at most a quarter of the threads at once (at least one), so threads and cores stay
/// free for other peers even while one peer's jobs are long (decoding a 4 MiB request, listing
/// large cases). Handler work is short next to the store's writer and the event loops, so one
/// thread carries one peer's thousands of calls a second.
public final class WorkerPool: Sendable {
    private struct State {
        var queues: [ObjectIdentifier: [UnownedJob]] = [:]
        var running: [ObjectIdentifier: Int] = [:]
        /// Lanes with queued jobs, in the order they get their next turn.
        var turns: [Lane] = []
        var lanes: [String: Lane] = [:]
        var stopping = false
    }
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    public let threads: Int
    private let maxRunningPerLane: Int

    /// `niceness` above 0 runs the threads at a lower CPU priority (Linux `nice` of each thread): for
    /// work nobody waits for, which should yield the cores to calls from peers and staff.
    public init(threads: Int, name: String = "cb-worker", niceness: Int32 = 0) {
        self.threads = max(1, threads)
        maxRunningPerLane = max(1, self.threads / 4)
        for i in 0..<self.threads {
            startThread(named: "\(name)-\(i)") { [self] in
                // On Linux a nice value belongs to a thread, and "0" is the calling one.
                if niceness != 0 { setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness) }
                work()
            }
        }
    }

    /// The lane of one peer (created on first use; lanes live as long as the pool).
    public func lane(_ key: String) -> Lane {
        state.withLock { state in
            if let lane = state.lanes[key] { return lane }
            let lane = Lane(pool: self, key: key)
            state.lanes[key] = lane
            return lane
        }
    }

    /// Lets the threads finish what is queued, then end.
    public func shutdown() {
        state.withLock { $0.stopping = true }
        for _ in 0..<threads { wake.signal() }
    }

    fileprivate func enqueue(_ job: UnownedJob, on lane: Lane) {
        state.withLock { state in
            let id = ObjectIdentifier(lane)
            if state.queues[id, default: []].isEmpty { state.turns.append(lane) }
            state.queues[id, default: []].append(job)
        }
        wake.signal()
    }

    private func work() {
        while true {
            wake.wait()
            // A lane at its share is skipped (it keeps its place); a finishing job wakes a thread for it.
            let next = state.withLock { state -> (UnownedJob, Lane)? in
                guard
                    let turn = state.turns.firstIndex(where: {
                        state.running[ObjectIdentifier($0), default: 0] < maxRunningPerLane
                    })
                else { return nil }
                let lane = state.turns.remove(at: turn)
                let id = ObjectIdentifier(lane)
                let job = state.queues[id]!.removeFirst()
                if state.queues[id]!.isEmpty { state.queues.removeValue(forKey: id) } else { state.turns.append(lane) }
                state.running[id, default: 0] += 1
                return (job, lane)
            }
            if let (job, lane) = next {
                job.runSynchronously(on: lane.asUnownedTaskExecutor())
                let waiting = state.withLock { state -> Bool in
                    let id = ObjectIdentifier(lane)
                    state.running[id]! -= 1
                    if state.running[id] == 0 { state.running.removeValue(forKey: id) }
                    return state.queues[id] != nil
                }
                if waiting { wake.signal() }
            } else if state.withLock({ $0.stopping }) {
                return
            }
        }
    }

    /// One peer's share of the pool: a task executor, so a handler task started with it as its
    /// preference runs every step on the pool.
    public final class Lane: TaskExecutor, @unchecked Sendable {
        unowned let pool: WorkerPool
        public let key: String
        init(pool: WorkerPool, key: String) {
            self.pool = pool
            self.key = key
        }
        public func enqueue(_ job: consuming ExecutorJob) {
            pool.enqueue(UnownedJob(job), on: self)
        }
    }
}
