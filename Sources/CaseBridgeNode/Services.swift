import CaseBridgePasswords
import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeStore
import Logging
import Foundation

/// casebridge.v1.CaseExchange: what peer nodes may ask of this node. The caller is the node named
/// by its verified certificate; every refusal is audited.
enum ExchangeService {
    static func register(
        in router: inout RPCRouter,
        tracker: CaseTracker,
        signer: ReceiptSigner,
        checkpoints: AuditCheckpoints
    ) {
        // A sender's retry (the bytes committed before) is answered before it is decoded.
        router.unaryUndecoded(CaseExchange.submitRequest) { bytes, call in
            let looked = tracker.lookUpRetry(bytes, from: tracker.directory.node(call.peer.nodeID))
            let sign = { (receipt: SubmitReceipt) in
                try signer.sign(
                    caseID: receipt.caseID,
                    messageID: receipt.requestID,
                    message: bytes,
                    status: receipt.status,
                    atMs: receipt.receivedAtMs,
                    again: receipt.alreadyReceived
                )
            }
            if case .retry(var receipt) = looked {
                receipt.signed = try sign(receipt)
                return receipt
            }
            let request = try call.decode(InterventionRequest.self, bytes)
            return try await guarded(call, tracker, subject: request.requestID) { caller in
                try await tracker.receiveRequest(request, bytes: bytes, looked: looked, from: caller, signedBy: sign)
            }
        }
        router.unary(CaseExchange.pushUpdate) { update, call in
            try await guarded(call, tracker, subject: update.caseID) { caller in
                var receipt = try await tracker.receiveUpdate(update, bytes: call.requestBytes, from: caller)
                receipt.signed = try signer.sign(
                    caseID: receipt.caseID,
                    messageID: receipt.updateID,
                    message: try call.requestBytes ?? ProtoCodec.encode(update),
                    status: receipt.status,
                    atMs: receipt.appliedAtMs,
                    again: receipt.alreadyApplied
                )
                return receipt
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
        router.unary(CaseExchange.lodgeCheckpoint) { checkpoint, call in
            try await guarded(call, tracker, subject: "audit") { try await checkpoints.receive(checkpoint, from: $0) }
        }
        router.unary(CaseExchange.getDirectory) { request, call in
            try await guarded(call, tracker, subject: "directory") { _ in
                let directory = tracker.directory
                guard let file = directory.signedFile else {
                    throw RPCError(.notFound, "this node holds no signed directory; its operator keeps a plain one")
                }
                var reply = SignedDirectory()
                reply.version = directory.version
                if request.haveVersion < directory.version { reply.signedFile = file }
                return reply
            }
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

/// casebridge.v1.Console: the node's own staff, on the local socket and on the HTTPS console
/// listener (one router each, registered the same way: one authorization path for both). Every call
/// but sign-in and enrolment needs a live session; what it may do follows the account's role.
struct ConsoleService: Sendable {
    let tracker: CaseTracker
    let accounts: StaffAccounts
    let status: StatusReporter
    let checkpoints: AuditCheckpoints
    let retention: RetentionSettings
    let statisticsMinCount: Int
    /// The federation CA certificate and CRL files a proof bundle carries.
    let caPath: String
    let crlPath: String?
    /// "socket" or "https": recorded with every action and read.
    let via: String

    func register(in router: inout RPCRouter) {
        registerCases(in: &router)
        registerOperations(in: &router)
        registerStaff(in: &router)
    }

    private func registerCases(in router: inout RPCRouter) {
        let tracker = self.tracker
        router.unary(Console.submit) { request, call in
            try await staff(call, .workCases) { try await tracker.submit(request, by: $0) }
        }
        router.unary(Console.applyChange) { update, call in
            try await staff(call, .workCases) { member in
                if update.change?.closesCase == true { try StaffPermission.closeCases.check(member) }
                return try await tracker.applyChange(update, by: member)
            }
        }
        router.unaryEncoded(Console.getCase) { request, call in
            try await staff(call, .readCases) { member in
                let bytes = try tracker.caseBytes(request.caseID, for: .staff)
                guard member.seesPersonalData else {
                    return try ProtoCodec.encode(PersonalData.withheld(try ProtoCodec.decode(Case.self, from: bytes)))
                }
                try await tracker.recordAccess([request.caseID], what: "case view", by: member)
                // As stored (a newer node's fields kept), unless it has files to leave out.
                guard try tracker.hasAttachments(request.caseID) else { return bytes }
                let limits = ProtoLimits(maxMessageBytes: bytes.count, maxElements: max(300_000, bytes.count / 8))
                return try ProtoCodec.encode(
                    CaseTracker.withoutAttachmentData(try ProtoCodec.decode(Case.self, from: bytes, limits: limits))
                )
            }
        }
        let (caPath, crlPath) = (self.caPath, self.crlPath)
        router.unary(Console.getProof) { request, call in
            try await staff(call, .readCases) { member in
                let ca = try String(contentsOfFile: caPath, encoding: .utf8)
                let crl = try crlPath.map { try String(contentsOfFile: $0, encoding: .utf8) } ?? ""
                return try await tracker.proof(request, caPEM: ca, crlPEM: crl, by: member)
            }
        }
        router.unary(Console.getAttachment) { request, call in
            try await staff(call, .readCases) { try await tracker.attachment(request, by: $0) }
        }
        router.serverStreaming(Console.listCases) { request, call, writer in
            for summary in try await staff(call, .readCases, { _ in try tracker.summaries(request, for: .staff) }) {
                try await writer.send(summary)
            }
        }
        router.unary(Console.findCases) { request, call in
            try await staff(call, .readCases) { _ in try tracker.casePage(request) }
        }
        router.unary(Console.exportPersons) { request, call in
            try await staff(call, .readCases) { try await tracker.exportPersons(request, by: $0) }
        }
        router.serverStreaming(Console.listDeadlines) { request, call, writer in
            for entry in try await staff(call, .readCases, { _ in try tracker.deadlines(request) }) {
                try await writer.send(entry)
            }
        }
        router.unary(Console.getReport) { request, call in
            try await staff(call, .readCases) { _ in try tracker.report(request) }
        }
        let minimumCount = statisticsMinCount
        router.unary(Console.exportStatistics) { request, call in
            try await staff(call, .readCases) {
                try await tracker.statistics(request, minimumCount: minimumCount, by: $0)
            }
        }
        router.unary(Console.listMatches) { request, call in
            try await staff(call, .search) { try await tracker.matches(request, by: $0) }
        }
        router.unary(Console.decideMatch) { request, call in
            try await staff(call, .workCases) { try await tracker.decideMatch(request, by: $0) }
        }
        router.unary(Console.explainBreach) { request, call in
            try await staff(call, .closeCases) { try await tracker.explainBreach(request, by: $0) }
        }
        router.unary(Console.readTable) { request, call in
            try await staff(call, .workCases) { _ in PersonsTable.read(request) }
        }
        router.serverStreaming(Console.listInbox) { request, call, writer in
            let entries = try await staff(call, .readCases) { member in
                let entries = try tracker.inbox(request, for: member)
                return member.seesPersonalData ? entries : entries.map { PersonalData.withheld($0) }
            }
            for entry in entries { try await writer.send(entry) }
        }
        router.unary(Console.markRead) { request, call in
            try await staff(call, .readCases) { try await tracker.markRead(request, by: $0) }
        }
        router.serverStreaming(Console.watch) { request, call, writer in
            let member: StaffMember = try await staff(call, .readCases) { $0 }
            let hide = !member.seesPersonalData
            try await watch(
                tracker,
                after: request.afterEventID,
                viewer: .staff,
                call: call,
                writer: writer,
                shown: { hide ? PersonalData.withheld($0) : $0 }
            )
        }
        router.serverStreaming(Console.search) { request, call, writer in
            for hit in try await staff(call, .search, { try await tracker.search(request, by: $0) }) {
                try await writer.send(hit)
            }
        }
    }

    private func registerOperations(in router: inout RPCRouter) {
        let tracker = self.tracker, status = self.status, retention = self.retention
        router.unary(Console.getStatus) { _, call in try await staff(call, .signedIn) { try status.status(for: $0) } }
        router.unary(Console.verifyAudit) { _, call in
            try await staff(call, .readAudit) { _ in try await checkpoints.verify() }
        }
        router.serverStreaming(Console.listAudit) { request, call, writer in
            for entry in try await staff(call, .readAudit, { _ in try tracker.auditLog(request) }) {
                try await writer.send(entry)
            }
        }
        router.serverStreaming(Console.listAccess) { request, call, writer in
            for entry in try await staff(call, .readAccessLog, { _ in try tracker.accessLog(request) }) {
                try await writer.send(entry)
            }
        }
        router.unary(Console.cancelDelivery) { request, call in
            try await staff(call, .manageDeliveries) { try await tracker.cancelDelivery(request, by: $0) }
        }
        router.unary(Console.deliverNow) { request, call in
            try await staff(call, .manageDeliveries) { try await tracker.deliverNow(request, by: $0) }
        }
        router.serverStreaming(Console.listRetention) { request, call, writer in
            for entry in try await staff(
                call,
                .operateNode,
                { _ in try tracker.retention(request, settings: retention) }
            ) {
                try await writer.send(entry)
            }
        }
        router.unary(Console.holdRetention) { request, call in
            try await staff(call, .closeCases) { try await tracker.holdRetention(request, settings: retention, by: $0) }
        }
        router.unary(Console.backup) { request, call in
            try await staff(call, .operateNode) { member in
                guard member.role == .operator else {
                    throw RPCError(.permissionDenied, "only operators take backups")
                }
                return try await tracker.backup(request, by: member)
            }
        }
    }

    private func registerStaff(in router: inout RPCRouter) {
        let accounts = self.accounts, via = self.via
        router.unary(Console.login) { request, _ in try await guarded { try await accounts.login(request, via: via) } }
        router.unary(Console.beginEnrolment) { request, _ in
            try await guarded { try await accounts.beginEnrolment(request) }
        }
        router.unary(Console.completeEnrolment) { request, _ in
            try await guarded { try await accounts.completeEnrolment(request, via: via) }
        }
        router.unary(Console.logout) { _, call in
            try await staff(call, .signedIn) { member in
                if let token = Self.token(call) { try await accounts.logout(token: token, member: member) }
                return LogoutReply()
            }
        }
        router.unary(Console.whoAmI) { _, call in
            try await staff(call, .signedIn) { member in
                guard let account = try accounts.account(member.login) else {
                    throw RPCError(.unauthenticated, "the account is gone: sign in again")
                }
                return account
            }
        }
        router.unary(Console.addStaff) { request, call in
            // While the node has no account, its own socket may add the first operator.
            if via == "socket", Self.token(call) == nil, try accounts.isEmpty() {
                guard request.role == .operator else {
                    throw RPCError(.failedPrecondition, "the first account must be an operator (--role operator)")
                }
                return try await guarded { try await accounts.add(request, by: .bootstrap) }
            }
            return try await staff(call, .manageStaff) { try await accounts.add(request, by: $0) }
        }
        router.serverStreaming(Console.listStaff) { _, call, writer in
            for account in try await staff(call, .listStaff, { _ in try accounts.list() }) {
                try await writer.send(account)
            }
        }
        router.unary(Console.changeStaff) { request, call in
            try await staff(call, .manageStaff) { try await accounts.change(request, by: $0) }
        }
        router.unary(Console.resetStaff) { request, call in
            try await staff(call, .manageStaff) { try await accounts.reset(request, by: $0) }
        }
    }

    /// The session token of a call: "authorization: Bearer <token>".
    static func token(_ call: ServerCall) -> String? {
        guard let header = call.requestMetadata["authorization"], header.lowercased().hasPrefix("bearer ") else {
            return nil
        }
        let token = header.dropFirst(7).trimmingCharacters(in: .whitespaces)
        return token.isEmpty || token.count > 256 ? nil : token
    }

    /// A staff call: the caller's session and role checked, refusals audited, store failures made readable.
    func staff<T: Sendable>(
        _ call: ServerCall,
        _ permission: StaffPermission,
        _ body: (StaffMember) async throws -> T
    ) async throws -> T {
        try await guarded {
            guard let token = Self.token(call) else {
                throw RPCError(.unauthenticated, "not signed in: sign in first (casebridge login)")
            }
            let member = try await accounts.member(token: token, via: via)
            do {
                try permission.check(member)
                return try await body(member)
            } catch let refusal as RPCError where refusal.code == .permissionDenied {
                await tracker.auditRefusal(
                    event: "staff.refused",
                    actor: member.auditActor,
                    subject: call.path,
                    error: refusal
                )
                throw refusal
            }
        }
    }

    /// Store failures become a readable UNAVAILABLE; malformed messages INVALID_ARGUMENT.
    func guarded<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as StoreError {
            tracker.logger.error("store failure", metadata: ["error": "\(error)"])
            throw RPCError(.unavailable, "the node could not store this; try again")
        } catch let error as ProtoError {
            throw RPCError(.invalidArgument, error.description)
        } catch let error as PasswordHash.Failure {
            tracker.logger.error("password hashing failed", metadata: ["error": "\(error)"])
            throw RPCError(.internal, "the password could not be hashed; try again")
        }
    }
}

/// Streams case events as they are committed, resuming after `after` (0: from now on).
func watch(
    _ tracker: CaseTracker,
    after: UInt64,
    viewer: CaseTracker.Viewer,
    call: ServerCall,
    writer: ResponseWriter<CaseEvent>,
    shown: @Sendable (CaseEvent) -> CaseEvent = { $0 }
) async throws {
    let bell = tracker.changes.subscribe()  // before the first read, so no commit falls between
    var last = after == 0 ? try tracker.lastEventID() : try Validation.storedID(after, field: "after_event_id")
    var rings = bell.makeAsyncIterator()
    while !call.isClosed {
        let (events, newest) = try tracker.events(after: last, for: viewer)
        last = newest
        for event in events { try await writer.send(shown(event)) }
        if events.isEmpty, await rings.next() == nil { return }
    }
}
