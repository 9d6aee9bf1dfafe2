import CSQLite
import Foundation

/// A failure of the store, with SQLite's own message.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public var code: Int32
    public var message: String
    public init(code: Int32 = SQLITE_ERROR, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "store: \(message) (SQLite code \(code))" }
}

/// A value bound to or read from a statement.
public enum SQLValue: Sendable, Equatable {
    case int(Int64)
    case text(String)
    case blob([UInt8])
    case null
}

/// One SQLite connection. Used by one thread at a time (the writer thread, or a reader that took it
/// from the pool).
public final class Database: @unchecked Sendable {
    let handle: OpaquePointer
    private var statements: [String: Statement] = [:]
    /// The audit chain's last sequence and hash, kept by the writer; forgotten on any rollback.
    var auditTail: (seq: Int64, hash: [UInt8])?
    /// Seals and opens personal data (nil: a connection that never touches it).
    let sealer: RecordSealer?
    /// New cases' persons kept for the duplicate scan, shared by the store's connections (nil: none kept).
    let filedTraits: FiledTraits?
    /// SQLite's own count of the virtual-machine steps this connection's statements ran: the work a
    /// query did, the same on every run (what tests compare where a time would be noise).
    public private(set) var stepsRun = 0

    /// `vfs`: SQLite's file layer by name (nil: its default).
    init(
        path: String,
        readOnly: Bool,
        sealer: RecordSealer? = nil,
        filedTraits: FiledTraits? = nil,
        vfs: String? = nil
    ) throws(StoreError) {
        _ = PageCacheTruncation.installed
        self.sealer = sealer
        self.filedTraits = filedTraits
        var handle: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path, &handle, flags, vfs)
        guard status == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close(handle)
            throw StoreError(code: status, "\(path): \(message)")
        }
        self.handle = handle
        sqlite3_extended_result_codes(handle, 1)
        sqlite3_busy_timeout(handle, 10_000)
        _ = cb_sqlite_enable_defensive(handle)
    }

    deinit {
        statements.removeAll()
        sqlite3_close_v2(handle)
    }

    /// Runs SQL without results (several statements allowed).
    public func execute(_ sql: String) throws(StoreError) {
        var error: UnsafeMutablePointer<CChar>?
        let status = sqlite3_exec(handle, sql, nil, nil, &error)
        if status != SQLITE_OK {
            let message = error.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(error)
            throw StoreError(code: status, message)
        }
    }

    /// Runs one statement with parameters, returning every row.
    @discardableResult
    public func query(_ sql: String, _ values: [SQLValue] = []) throws(StoreError) -> [Row] {
        let statement = try prepared(sql)
        defer { stepsRun += statement.reset() }
        try statement.bind(values)
        var rows: [Row] = []
        while try statement.step() { rows.append(statement.row()) }
        return rows
    }

    /// Runs one statement and hands each row to `body` as it is read, holding one row at a time
    /// (a walk over a table of any size in constant memory).
    public func forEach(
        _ sql: String,
        _ values: [SQLValue] = [],
        _ body: (Row) throws(StoreError) -> Void
    ) throws(StoreError) {
        let statement = try prepared(sql)
        defer { stepsRun += statement.reset() }
        try statement.bind(values)
        while try statement.step() { try body(statement.row()) }
    }

    /// The first row, if any.
    public func first(_ sql: String, _ values: [SQLValue] = []) throws(StoreError) -> Row? {
        try query(sql, values).first
    }

    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    public var changes: Int { Int(sqlite3_changes(handle)) }

    /// Bytes this connection's page cache holds now.
    var pageCacheBytes: Int {
        var current: Int32 = 0, highest: Int32 = 0
        sqlite3_db_status(handle, SQLITE_DBSTATUS_CACHE_USED, &current, &highest, 0)
        return Int(current)
    }

    /// Runs `body` inside a savepoint: on error, only its own changes are undone.
    func savepoint<T>(_ body: () throws -> T) throws -> T {
        try query("SAVEPOINT job")
        let tail = auditTail
        do {
            let result = try body()
            try query("RELEASE job")
            return result
        } catch {
            _ = try? query("ROLLBACK TO job")
            _ = try? query("RELEASE job")
            auditTail = tail
            throw error
        }
    }

    /// Begins a transaction, and commits it: statements prepared once per connection, where `execute`
    /// parses its SQL every time (every read and every group commit runs both).
    func begin(immediate: Bool = false) throws(StoreError) { try query(immediate ? "BEGIN IMMEDIATE" : "BEGIN") }
    func commit() throws(StoreError) { try query("COMMIT") }

    /// Undoes the open transaction, and what the writer remembered of it.
    func rollback() {
        try? execute("ROLLBACK")
        auditTail = nil
    }

    private func prepared(_ sql: String) throws(StoreError) -> Statement {
        if let statement = statements[sql] { return statement }
        var raw: OpaquePointer?
        let status = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &raw, nil)
        guard status == SQLITE_OK, let raw else {
            throw StoreError(code: status, String(cString: sqlite3_errmsg(handle)))
        }
        let statement = Statement(raw, database: handle)
        statements[sql] = statement
        return statement
    }
}

/// A prepared statement, cached by its connection.
final class Statement {
    let handle: OpaquePointer
    let database: OpaquePointer

    init(_ handle: OpaquePointer, database: OpaquePointer) {
        self.handle = handle
        self.database = database
    }

    deinit { sqlite3_finalize(handle) }

    func bind(_ values: [SQLValue]) throws(StoreError) {
        for (i, value) in values.enumerated() {
            let index = Int32(i + 1)
            let status: Int32 =
                switch value {
                case .int(let v): sqlite3_bind_int64(handle, index, v)
                case .text(let v): sqlite3_bind_text(handle, index, v, -1, cb_sqlite_transient())
                case .blob(let v):
                    v.withUnsafeBytes {
                        sqlite3_bind_blob(handle, index, $0.baseAddress, Int32($0.count), cb_sqlite_transient())
                    }
                case .null: sqlite3_bind_null(handle, index)
                }
            guard status == SQLITE_OK else { throw StoreError(code: status, String(cString: sqlite3_errmsg(database))) }
        }
    }

    /// True while there is a row to read.
    func step() throws(StoreError) -> Bool {
        let status = sqlite3_step(handle)
        if status == SQLITE_ROW { return true }
        if status == SQLITE_DONE { return false }
        throw StoreError(code: status, String(cString: sqlite3_errmsg(database)))
    }

    func row() -> Row {
        Row(
            values: (0..<sqlite3_column_count(handle)).map { column in
                switch sqlite3_column_type(handle, column) {
                case SQLITE_INTEGER: return .int(sqlite3_column_int64(handle, column))
                case SQLITE_TEXT: return .text(String(cString: sqlite3_column_text(handle, column)))
                case SQLITE_BLOB:
                    let count = Int(sqlite3_column_bytes(handle, column))
                    guard count > 0, let bytes = sqlite3_column_blob(handle, column) else { return .blob([]) }
                    return .blob(Array(UnsafeRawBufferPointer(start: bytes, count: count)))
                default: return .null
                }
            }
        )
    }

    /// Ready for the next run; returns the virtual-machine steps this run took.
    @discardableResult
    func reset() -> Int {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
        return Int(sqlite3_stmt_status(handle, SQLITE_STMTSTATUS_VM_STEP, 1))
    }
}

/// One result row, read by column position.
public struct Row: Sendable {
    public let values: [SQLValue]
    public func int(_ i: Int) -> Int64 { if case .int(let v) = values[i] { v } else { 0 } }
    public func text(_ i: Int) -> String { if case .text(let v) = values[i] { v } else { "" } }
    public func blob(_ i: Int) -> [UInt8] { if case .blob(let v) = values[i] { v } else { [] } }
    public func isNull(_ i: Int) -> Bool { values[i] == .null }
}

/// A WHERE clause built from the filters a caller gave, with its values in order.
struct Conditions {
    private var clauses: [String] = []
    private(set) var values: [SQLValue] = []

    mutating func add(_ clause: String, _ bound: SQLValue..., when applies: Bool = true) {
        guard applies else { return }
        clauses.append(clause)
        values += bound
    }

    var whereClause: String { clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ") }
}
