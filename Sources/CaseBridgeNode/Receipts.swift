import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeStore
import CaseBridgeTLS
import Foundation

/// Signs what this node acknowledges (a request received, an update applied) with its federation
/// key, so the sender can prove it later to anyone holding the federation CA certificate.
struct ReceiptSigner: Sendable {
    let node: String
    let signer: Signatures.Signer

    init(node: String, certificatePath: String, keyPath: String) throws {
        self.node = node
        signer = try Signatures.Signer(
            certificatePEM: try String(contentsOfFile: certificatePath, encoding: .utf8),
            keyPEM: try String(contentsOfFile: keyPath, encoding: .utf8)
        )
    }

    func sign(
        caseID: String,
        messageID: String,
        message: [UInt8],
        status: CaseStatus,
        atMs: Int64
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
        signed.signature = try signer.sign(signed.statement)
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
