import CaseBridgeProto
import Synchronization

/// grpc.health.v1.Health: standard health checking, so that generic tooling can probe a node.
public final class HealthService: Sendable {
    public typealias Status = GRPCHealth.HealthCheckResponse.ServingStatus

    private struct State {
        var statuses: [String: Status]
        var watchers: [Int: (service: String, continuation: AsyncStream<Status>.Continuation)] = [:]
        var nextWatcher = 0
    }
    private let state: Mutex<State>

    /// `services` start SERVING; "" stands for the server as a whole.
    public init(services: [String]) {
        var statuses = Dictionary(uniqueKeysWithValues: services.map { ($0, Status.serving) })
        statuses[""] = .serving
        state = Mutex(State(statuses: statuses))
    }

    public func setStatus(_ status: Status, for service: String = "") {
        let watchers = state.withLock { state in
            state.statuses[service] = status
            return state.watchers.values.filter { $0.service == service }.map(\.continuation)
        }
        for watcher in watchers { watcher.yield(status) }
    }

    /// Marks everything NOT_SERVING (at shutdown), so watchers learn before the connection goes.
    public func shutdown() {
        let services = state.withLock { Array($0.statuses.keys) }
        for service in services { setStatus(.notServing, for: service) }
    }

    public func register(in router: inout RPCRouter) {
        router.unary(GRPCHealth.Health.check) { [self] request, _ in
            guard let status = state.withLock({ $0.statuses[request.service] }) else {
                throw RPCError(.notFound, "unknown service \(request.service)")
            }
            var response = GRPCHealth.HealthCheckResponse()
            response.status = status
            return response
        }
        router.serverStreaming(GRPCHealth.Health.watch) { [self] request, _, writer in
            let (updates, continuation) = AsyncStream<Status>.makeStream()
            let id = state.withLock { state in
                let id = state.nextWatcher
                state.nextWatcher += 1
                state.watchers[id] = (request.service, continuation)
                continuation.yield(state.statuses[request.service] ?? .serviceUnknown)
                return id
            }
            defer { _ = state.withLock { $0.watchers.removeValue(forKey: id) } }
            for await status in updates {
                var response = GRPCHealth.HealthCheckResponse()
                response.status = status
                try await writer.send(response)
            }
        }
    }
}
