import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeStore
import Logging

/// casebridge.v1.CaseExchange: what peer nodes may ask of this node. The caller is the node named
/// by its verified certificate; every refusal is audited.
enum ExchangeService {
    static func register(in router: inout RPCRouter, tracker: CaseTracker) {
        router.unary(CaseExchange.submitRequest) { request, call in
            try await guarded(call, tracker, subject: request.requestID) { caller in
                try await tracker.receiveRequest(request, bytes: call.requestBytes, from: caller)
            }
        }
        router.unary(CaseExchange.pushUpdate) { update, call in
            try await guarded(call, tracker, subject: update.caseID) { caller in
                try await tracker.receiveUpdate(update, bytes: call.requestBytes, from: caller)
            }
        }
        router.unaryEncoded(CaseExchange.getCase) { request, call in
            try await guarded(call, tracker, subject: request.caseID) { caller in
                try tracker.caseBytes(request.caseID, for: .peer(caller))
            }
        }
        router.serverStreaming(CaseExchange.listCases, expensive: true) { request, call, writer in
            let summaries = try await guarded(call, tracker, subject: "") { caller in
                try tracker.summaries(request, for: .peer(caller))
            }
            for summary in summaries { try await writer.send(summary) }
        }
        router.serverStreaming(CaseExchange.watchCases, expensive: true) { request, call, writer in
            let caller = try await guarded(call, tracker, subject: "") { $0 }
            try await watch(tracker, after: request.afterEventID, viewer: .peer(caller), call: call, writer: writer)
        }
    }

    /// Resolves the caller in the directory, runs `body`, and audits a refusal.
    static func guarded<T: Sendable>(
        _ call: ServerCall,
        _ tracker: CaseTracker,
        subject: String,
        _ body: (DirectoryEntry) async throws -> T
    ) async throws -> T {
        let refusal: RPCError
        do {
            guard let caller = tracker.directory.node(call.peer.nodeID) else {
                throw RPCError(.permissionDenied, "node \(call.peer.nodeID) is not in the federation directory")
            }
            return try await body(caller)
        } catch let error as RPCError {
            refusal = error
        } catch let error as ProtoError {
            refusal = RPCError(.invalidArgument, error.description)
        } catch let error as StoreError {
            tracker.logger.error("store failure", metadata: ["path": "\(call.path)", "error": "\(error)"])
            refusal = RPCError(.unavailable, "the node could not store this; try again")
        }
        await tracker.auditRefusal(
            event: "call.refused",
            actor: call.peer.nodeID,
            subject: subject.isEmpty ? call.path : subject,
            error: RPCError(refusal.code, "\(call.path): \(refusal.message)")
        )
        throw refusal
    }
}

/// casebridge.v1.Console: the node's own staff, on the local socket.
enum ConsoleService {
    static func register(
        in router: inout RPCRouter,
        tracker: CaseTracker,
        status: StatusReporter,
        retention: RetentionSettings
    ) {
        router.unary(Console.submit) { request, _ in try await staff(tracker) { try await tracker.submit(request) } }
        router.unary(Console.applyChange) { update, _ in
            try await staff(tracker) { try await tracker.applyChange(update) }
        }
        router.unaryEncoded(Console.getCase) { request, _ in
            try await staff(tracker) { try tracker.caseBytes(request.caseID, for: .staff) }
        }
        router.serverStreaming(Console.listCases) { request, _, writer in
            for summary in try await staff(tracker, { try tracker.summaries(request, for: .staff) }) {
                try await writer.send(summary)
            }
        }
        router.serverStreaming(Console.listInbox) { request, _, writer in
            for entry in try await staff(tracker, { try tracker.inbox(request) }) { try await writer.send(entry) }
        }
        router.unary(Console.markRead) { request, _ in try await staff(tracker) { try await tracker.markRead(request) }
        }
        router.serverStreaming(Console.watch) { request, call, writer in
            try await watch(tracker, after: request.afterEventID, viewer: .staff, call: call, writer: writer)
        }
        router.unary(Console.getStatus) { _, _ in try await staff(tracker) { try status.status() } }
        router.unary(Console.verifyAudit) { _, _ in try await staff(tracker) { try tracker.verifyAudit() } }
        router.unary(Console.cancelDelivery) { request, _ in
            try await staff(tracker) { try await tracker.cancelDelivery(request) }
        }
        router.serverStreaming(Console.listRetention) { request, _, writer in
            for entry in try await staff(tracker, { try tracker.retention(request, settings: retention) }) {
                try await writer.send(entry)
            }
        }
        router.unary(Console.backup) { request, _ in try await staff(tracker) { try await tracker.backup(request) } }
        router.serverStreaming(Console.listAudit) { request, _, writer in
            for entry in try await staff(tracker, { try tracker.auditLog(request) }) { try await writer.send(entry) }
        }
        router.unary(Console.deliverNow) { request, _ in
            try await staff(tracker) { try await tracker.deliverNow(request) }
        }
        router.serverStreaming(Console.search) { request, _, writer in
            for hit in try await staff(tracker, { try await tracker.search(request) }) { try await writer.send(hit) }
        }
        router.unary(Console.holdRetention) { request, _ in
            try await staff(tracker) { try await tracker.holdRetention(request, settings: retention) }
        }
    }

    /// Staff calls: store failures become a readable UNAVAILABLE.
    static func staff<T: Sendable>(_ tracker: CaseTracker, _ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as StoreError {
            tracker.logger.error("store failure", metadata: ["error": "\(error)"])
            throw RPCError(.unavailable, "the node could not store this; try again")
        } catch let error as ProtoError {
            throw RPCError(.invalidArgument, error.description)
        }
    }
}

/// Streams case events as they are committed, resuming after `after` (0: from now on).
func watch(
    _ tracker: CaseTracker,
    after: UInt64,
    viewer: CaseTracker.Viewer,
    call: ServerCall,
    writer: ResponseWriter<CaseEvent>
) async throws {
    let bell = tracker.changes.subscribe()  // before the first read, so no commit falls between
    var last = after == 0 ? try tracker.lastEventID() : try Validation.storedID(after, field: "after_event_id")
    var rings = bell.makeAsyncIterator()
    while !call.isClosed {
        let (events, newest) = try tracker.events(after: last, for: viewer)
        last = newest
        for event in events { try await writer.send(event) }
        if events.isEmpty, await rings.next() == nil { return }
    }
}
