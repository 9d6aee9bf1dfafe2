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
