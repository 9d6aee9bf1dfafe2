/// Each case's attachments as rows of their own: their type and size, so the per-case limit is
/// counted without opening the sealed history; the files stay sealed in the history.
extension Database {
    /// An attachment applied to a case (once; the same update again changes nothing).
    public func recordAttachment(caseID: String, updateID: String, contentType: String, size: Int) throws(StoreError) {
        try query(
            "INSERT OR IGNORE INTO attachments (case_id, update_id, content_type, size) VALUES (?, ?, ?, ?)",
            [.text(caseID), .text(updateID), .text(contentType), .int(Int64(size))]
        )
    }

    public func attachmentCount(_ caseID: String) throws(StoreError) -> Int {
        Int(try first("SELECT COUNT(*) FROM attachments WHERE case_id = ?", [.text(caseID)])?.int(0) ?? 0)
    }
}

extension Database {
    /// A peer's signed receipt for a message this node delivered (the first one kept).
    public func keepReceipt(
        messageID: String,
        caseID: String,
        peer: String,
        statement: [UInt8],
        signature: [UInt8]
    ) throws(StoreError) {
        try query(
            """
            INSERT OR IGNORE INTO receipts (message_id, peer, case_id, statement, signature) VALUES (?, ?, ?, ?, ?)
            """,
            [.text(messageID), .text(peer), .text(caseID), .blob(statement), .blob(signature)]
        )
    }

    /// A case's delivered messages that have a signed receipt, in the order they were sent.
    public func receipts(
        caseID: String
    ) throws(StoreError) -> [(messageID: String, kind: Int32, body: [UInt8], statement: [UInt8], signature: [UInt8])] {
        let rows = try query(
            "SELECT message_id, peer, statement, signature FROM receipts WHERE case_id = ?",
            [.text(caseID)]
        )
        var found: [(Int64, (String, Int32, [UInt8], [UInt8], [UInt8]))] = []
        for row in rows {
            guard let sent = try outboxMessage(row.text(0), peer: row.text(1)) else { continue }
            found.append((sent.position, (row.text(0), sent.kind, sent.body, row.blob(2), row.blob(3))))
        }
        return found.sorted { $0.0 < $1.0 }.map { $0.1 }
    }
}
