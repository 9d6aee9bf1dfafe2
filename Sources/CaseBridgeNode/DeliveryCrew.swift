import CaseBridgeNet
import CaseBridgeRPC
import CaseBridgeTLS
import Logging
import Synchronization

/// The delivery workers of a node, one per peer it sends to, each on its own lane: started at the
/// node's start, and added or stopped when a reloaded directory adds or removes a peer (a removed
/// peer's outbox stays, for the day it comes back).
final class DeliveryCrew: Sendable {
    private struct Member {
        let worker: DeliveryWorker
        var task: Task<Void, Never>?
    }
    private let members = Mutex<[String: Member]>([:])
    private let make: @Sendable (DirectoryEntry, TLSContext) -> DeliveryWorker
    private let pool: WorkerPool

    init(pool: WorkerPool, make: @escaping @Sendable (DirectoryEntry, TLSContext) -> DeliveryWorker) {
        self.pool = pool
        self.make = make
    }

    /// Workers for these peers, not yet running (the servers start first).
    func add(_ peers: [DirectoryEntry], tls: TLSContext, start: Bool) {
        for peer in peers {
            let worker = make(peer, tls)
            let task = start ? launch(worker) : nil
            members.withLock { $0[peer.id] = Member(worker: worker, task: task) }
        }
    }

    /// Runs every worker not running yet.
    func startAll() {
        members.withLock { all in
            for (id, member) in all where member.task == nil { all[id]?.task = launch(member.worker) }
        }
    }

    private func launch(_ worker: DeliveryWorker) -> Task<Void, Never> {
        Task(executorPreference: pool.lane(worker.peer.id)) { await worker.run() }
    }

    var peers: Set<String> { members.withLock { Set($0.keys) } }

    func worker(_ peer: String) -> DeliveryWorker? { members.withLock { $0[peer]?.worker } }

    func nudge(_ peer: String) { worker(peer)?.nudge() }

    func replaceTLS(_ tls: TLSContext) {
        for member in members.withLock({ Array($0.values) }) { member.worker.replaceTLS(tls) }
    }

    /// Stops the workers of these peers (what they owe stays in the outbox).
    func remove(_ peers: Set<String>) async {
        let gone = members.withLock { all in peers.compactMap { all.removeValue(forKey: $0) } }
        await stop(gone)
    }

    func stopAll() async {
        await stop(
            members.withLock { all in
                defer { all.removeAll() }
                return Array(all.values)
            }
        )
    }

    private func stop(_ gone: [Member]) async {
        for member in gone {
            member.task?.cancel()
            member.worker.nudge()
        }
        for member in gone { await member.task?.value }
    }
}
