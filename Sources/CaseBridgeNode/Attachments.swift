import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeStore
import CaseBridgeTLS

/// Photos and scanned documents: JPEG, PNG or PDF, told apart by their first bytes (never by the
/// name or the declared type alone), within the contract's size and count limits.
public enum AttachmentRules {
    public static let maxBytes = 2 * 1024 * 1024
    public static let maxPerCase = 20
    public static let allowedTypes = ["image/jpeg", "image/png", "application/pdf"]

    /// The allowed type a file's first bytes show, or nil.
    public static func sniff(_ data: [UInt8]) -> String? {
        if data.starts(with: [0xFF, 0xD8, 0xFF]) { return "image/jpeg" }
        if data.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return "image/png" }
        if data.starts(with: Array("%PDF-".utf8)) { return "application/pdf" }
        return nil
    }

    /// What a receiver (and the sending node) checks before an attachment is stored.
    static func check(_ attachment: Attachment) throws(RPCError) {
        func invalid(_ field: String, _ problem: String) -> RPCError {
            RPCError(.invalidArgument, "attachment.\(field): \(problem)")
        }
        guard allowedTypes.contains(attachment.contentType) else {
            throw invalid("content_type", "must be image/jpeg, image/png or application/pdf")
        }
        guard !attachment.data.isEmpty else { throw invalid("data", "empty") }
        guard attachment.data.count <= maxBytes else {
            throw invalid("data", "\(attachment.data.count) bytes; at most 2 MiB (2,097,152 bytes) per file")
        }
        guard let found = sniff(attachment.data) else {
            throw invalid("data", "not a JPEG, PNG or PDF file (only those are accepted)")
        }
        guard found == attachment.contentType else {
            throw invalid("data", "the file is a \(found), not the \(attachment.contentType) content_type says")
        }
        guard attachment.sha256 == Digest.sha256Hex(attachment.data) else {
            throw invalid("sha256", "does not match the file (lower-case hex SHA-256 of data)")
        }
        let name = attachment.fileName
        guard (1...200).contains(name.count),
            !name.contains(where: { $0 == "/" || $0 == "\\" || $0.unicodeScalars.contains { $0.value < 0x20 } })
        else {
            throw invalid("file_name", "1 to 200 characters, without a folder")
        }
        guard attachment.caption.count <= 1_000 else { throw invalid("caption", "at most 1,000 characters") }
    }
}

extension CaseTracker {
    /// A case as staff read it at the console: each attachment without its bytes (GetAttachment
    /// gives one in full), so a case with twenty photos opens as fast as one without.
    static func withoutAttachmentData(_ view: Case) -> Case {
        var view = view
        view.history = view.history.map { update in
            guard case .attachment(var attachment)? = update.change else { return update }
            attachment.data = []
            var kept = update
            kept.change = .attachment(attachment)
            return kept
        }
        return view
    }

    func hasAttachments(_ caseID: String) throws -> Bool {
        try store.read { try $0.attachmentCount(caseID) } > 0
    }

    /// One attachment in full, for staff who see personal data; each look is in the access log.
    public func attachment(_ request: GetAttachmentRequest, by member: StaffMember) async throws -> Attachment {
        guard member.seesPersonalData else {
            throw RPCError(.permissionDenied, "attachments are personal data; operators do not see them")
        }
        guard Validation.isUUID(request.caseID), Validation.isUUID(request.updateID) else {
            throw RPCError(.invalidArgument, "case_id and update_id: give the case's and the update's ids")
        }
        let found: Attachment? = try store.read { db in
            guard let body = try db.historyBody(updateID: request.updateID) else { return nil }
            let update = try ProtoCodec.decode(CaseUpdate.self, from: body)
            guard update.caseID == request.caseID, case .attachment(let attachment)? = update.change else { return nil }
            return attachment
        }
        guard let found else {
            throw RPCError(.notFound, "case \(request.caseID) has no attachment in update \(request.updateID)")
        }
        try await recordAccess([request.caseID], what: "attachment view", by: member)
        return found
    }
}
