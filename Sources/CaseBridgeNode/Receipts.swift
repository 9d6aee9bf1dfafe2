import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeStore
import CaseBridgeTLS
import Foundation
import Synchronization

/// Signs what this node acknowledges (a request received, an update applied) and its audit
/// checkpoints with its federation key, so that anyone holding the federation CA certificate can
/// check them. A reload with a renewed certificate and key signs with them from then on.
final class ReceiptSigner: Sendable {
    let node: String
    private struct State {
        var signer: Signatures.Signer
        /// Proofs of receipts given again (a sender's retries of what was committed before), by
        /// statement: the same statement gets the same proof without a new signature.
        var again: [[UInt8]: [UInt8]] = [:]
        var order: [[UInt8]] = []
    }
    private let state: Mutex<State>
    /// Statements whose proofs are kept for retries; the oldest goes first.
    static let keptForRetries = 1_024

    init(node: String, certificatePath: String, keyPath: String) throws {
        self.node = node
        state = Mutex(State(signer: try Self.load(certificatePath, keyPath)))
    }

    private static func load(_ certificatePath: String, _ keyPath: String) throws -> Signatures.Signer {
        try Signatures.Signer(
            certificatePEM: try String(contentsOfFile: certificatePath, encoding: .utf8),
            keyPEM: try String(contentsOfFile: keyPath, encoding: .utf8)
        )
    }

    /// The certificate and key as the files hold them now (a reload).
    func reload(certificatePath: String, keyPath: String) throws {
        let signer = try Self.load(certificatePath, keyPath)
        state.withLock { $0 = State(signer: signer) }
    }

    /// A detached CMS signature over `content`.
    func sign(_ content: [UInt8]) throws -> [UInt8] {
        try state.withLock { $0.signer }.sign(content)
    }

    /// `again`: the receipt of something committed before, which its sender may ask for many times.
    func sign(
        caseID: String,
        messageID: String,
        message: [UInt8],
        status: CaseStatus,
        atMs: Int64,
        again: Bool = false
    ) throws
        -> SignedReceipt
    {
        var statement = ReceiptStatement()
        statement.node = node
        statement.caseID = caseID
        statement.messageID = messageID
        statement.messageSha256 = Digest.sha256Hex(message)
        statement.status = status
        statement.atMs = atMs
        var signed = SignedReceipt()
        signed.statement = try ProtoCodec.encode(statement)
        guard again else {
            signed.signature = try sign(signed.statement)
            return signed
        }
        let (signer, kept) = state.withLock { ($0.signer, $0.again[signed.statement]) }
        if let kept {
            signed.signature = kept
            return signed
        }
        signed.signature = try signer.sign(signed.statement)
        state.withLock { state in
            // A reload since: the proof is made with the old key; keep only proofs of the current one.
            guard state.signer === signer, state.again[signed.statement] == nil else { return }
            state.again[signed.statement] = signed.signature
            state.order.append(signed.statement)
            if state.order.count > Self.keptForRetries { state.again[state.order.removeFirst()] = nil }
        }
        return signed
    }
}

extension CaseTracker {
    /// A peer's signed receipt for a message this node delivered, kept to prove it later.
    func keepReceipt(_ receipt: SignedReceipt?, for message: OutboxRow) async throws {
        guard let receipt, !receipt.signature.isEmpty else { return }
        try await store.write { db in
            try db.keepReceipt(
                messageID: message.messageID,
                caseID: message.caseID,
                peer: message.peerNode,
                statement: receipt.statement,
                signature: receipt.signature
            )
        }
    }

    /// The messages this node delivered about a case, as sent, each with the receiver's signed
    /// receipt: what `casebridge case proof` writes out.
    public func proof(
        _ request: GetCaseRequest,
        caPEM: String,
        crlPEM: String,
        by member: StaffMember
    ) async throws
        -> ProofBundle
    {
        guard member.seesPersonalData else {
            throw RPCError(.permissionDenied, "a proof holds the case's messages, personal data operators do not see")
        }
        let bundle: ProofBundle = try store.read { db in
            guard try db.caseRow(request.caseID, withRequest: false) != nil else {
                throw RPCError(.notFound, "no case \(request.caseID) at \(me.id)")
            }
            var bundle = ProofBundle()
            bundle.caseID = request.caseID
            bundle.node = me.id
            bundle.caPem = caPEM
            bundle.crlPem = crlPEM
            bundle.madeAtMs = Clock.nowMs()
            bundle.items = try db.receipts(caseID: request.caseID).map { row in
                var item = ProofItem()
                item.kind = row.kind == CaseTracker.MessageKind.request.rawValue ? "request" : "update"
                item.messageID = row.messageID
                item.message = row.body
                var receipt = SignedReceipt()
                receipt.statement = row.statement
                receipt.signature = row.signature
                item.receipt = receipt
                item.statement = try? ProtoCodec.decode(ReceiptStatement.self, from: row.statement)
                return item
            }
            return bundle
        }
        try await recordAccess([request.caseID], what: "proof export", by: member)
        return bundle
    }
}
