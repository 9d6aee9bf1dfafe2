import CaseBridgeRPC
import CaseBridgeStore
import CaseBridgeProto
import CaseBridgeTLS
import Foundation

/// A configuration problem, naming the file, the field and what is wrong.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public let file: String
    public let field: String
    public let problem: String
    public var description: String { field.isEmpty ? "\(file): \(problem)" : "\(file): \(field): \(problem)" }
}

/// One node of the federation, as the shared directory lists it.
public struct DirectoryEntry: Sendable, Equatable {
    public enum Role: String, Sendable { case ncct, embassy }
    public let id: String
    public let role: Role
    /// ISO 3166-1 alpha-2 of the state an embassy represents; "KH" for NCCT.
    public let represents: String
    /// host:port other nodes connect to.
    public let endpoint: String
    public let displayName: String
}

/// The federation directory: every node's id, role, state, endpoint and name. Every node holds
/// the same file: a plain JSON file each operator keeps, or one the federation CA signed (a CMS
/// in PEM holding the JSON), which NCCT's node serves and embassies follow.
public struct Directory: Sendable {
    public let trustDomain: String
    public let nodes: [DirectoryEntry]
    /// The deadlines the federation agreed (the same file at every node, so the same clocks).
    public var deadlines = DeadlinePolicy.standard
    /// A signed directory replaces the one a node holds only when its version is higher.
    public var version: Int64 = 0
    /// The file as the federation CA signed it, when the directory came signed.
    public var signedFile: [UInt8]?

    public func node(_ id: String) -> DirectoryEntry? { nodes.first { $0.id == id } }
    public var ncct: DirectoryEntry { nodes.first { $0.role == .ncct }! }

    static let signedPrefix = Array("-----BEGIN CMS-----".utf8)

    /// Reads the directory file; a signed one must hold up against the federation CA at `caPath`.
    public static func load(_ path: String, caPath: String? = nil) throws(ConfigurationError) -> Directory {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(file: path, field: "", problem: "cannot read the file")
        }
        guard data.starts(with: signedPrefix) else { return try parse(JSONFile(path: path, data: data)) }
        guard let caPath, let ca = try? String(contentsOfFile: caPath, encoding: .utf8) else {
            throw ConfigurationError(file: path, field: "", problem: "a signed directory needs the CA file to check it")
        }
        return try open(signed: [UInt8](data), path: path, caPEM: ca)
    }

    /// A directory signed by the federation CA: the signature must hold and name the CA itself
    /// (not a node), and the directory must carry a version.
    public static func open(signed file: [UInt8], path: String, caPEM: String) throws(ConfigurationError) -> Directory {
        let content: [UInt8]
        do { content = try Signatures.openSignedByAuthority(file, caPEM: caPEM) } catch {
            throw ConfigurationError(
                file: path,
                field: "",
                problem: "the directory's signature does not hold against the federation CA (\(error.message))"
            )
        }
        let json = try JSONFile(path: path, data: Data(content))
        var directory = try parse(json)
        guard directory.version > 0 else {
            throw json.error("version", "a signed directory needs a version of 1 or more")
        }
        directory.signedFile = file
        return directory
    }

    static func parse(_ object: JSONFile) throws(ConfigurationError) -> Directory {
        let path = object.path
        let trustDomain = try object.string("trust_domain")
        let list = try object.array("nodes")
        var nodes: [DirectoryEntry] = []
        for (i, item) in list.enumerated() {
            let field = "nodes[\(i)]"
            guard let entry = item as? [String: Any] else { throw object.error(field, "must be an object") }
            let node = JSONFile(path: path, object: entry, prefix: field)
            let id = try node.string("id")
            guard Validation.isNodeID(id) else {
                throw node.error("id", "\"\(id)\" may use only a-z, 0-9, '-', '.', '_'")
            }
            guard !nodes.contains(where: { $0.id == id }) else { throw node.error("id", "\"\(id)\" appears twice") }
            let roleText = try node.string("role")
            guard let role = DirectoryEntry.Role(rawValue: roleText) else {
                throw node.error("role", "must be \"ncct\" or \"embassy\", not \"\(roleText)\"")
            }
            let represents = try node.string("represents")
            guard Validation.isCountry(represents) else {
                throw node.error("represents", "must be an ISO 3166-1 alpha-2 code such as \"ID\"")
            }
            let endpoint = try node.string("endpoint")
            guard Validation.isEndpoint(endpoint) else {
                throw node.error("endpoint", "must be host:port, not \"\(endpoint)\"")
            }
            nodes.append(
                DirectoryEntry(
                    id: id,
                    role: role,
                    represents: represents,
                    endpoint: endpoint,
                    displayName: (try? node.string("display_name")) ?? id
                )
            )
            try node.refuseUnknownKeys()
        }
        let ncctCount = nodes.filter { $0.role == .ncct }.count
        guard ncctCount == 1 else {
            throw object.error("nodes", "must list exactly one node with role \"ncct\" (found \(ncctCount))")
        }
        var directory = Directory(trustDomain: trustDomain, nodes: nodes)
        directory.version = Int64(try object.int("version", default: 0, range: 0...Int(Int64.max)))
        if let deadlines = try object.optionalObject("deadlines") {
            directory.deadlines = try DeadlinePolicy(deadlines)
        }
        try object.refuseUnknownKeys()
        return directory
    }
}

/// Delivery retry timing: exponential backoff with jitter, never giving up.
public struct DeliverySettings: Sendable, Equatable {
    public var initialBackoff: Duration = .seconds(1)
    public var maxBackoff: Duration = .seconds(300)
    public var multiplier = 2.0
    public var jitter = 0.2
    /// Deadline of one delivery attempt.
    public var callTimeout: Duration = .seconds(15)
    /// Cases asked for per ListCases call when catching up with a peer after a restore.
    public var catchUpPage: UInt32 = 1_000
    public init() {}
}

/// How long a closed case keeps its personal data, and how often the node looks for what is due.
public struct RetentionSettings: Sendable, Equatable {
    public var daysAfterClosed = 365
    public var checkInterval: Duration = .seconds(3600)
    public init() {}

    var keepMs: Int64 { Int64(daysAfterClosed) * 86_400_000 }
}

/// Staff sign-in: session time-outs, lockout after failed sign-ins, how long an enrolment code lasts.
public struct StaffSettings: Sendable, Equatable {
    public var sessionIdle: Duration = .seconds(30 * 60)
    public var sessionLifetime: Duration = .seconds(12 * 3600)
    public var lockoutFailures = 10
    public var lockout: Duration = .seconds(15 * 60)
    public var enrolmentValidity: Duration = .seconds(72 * 3600)
    public init() {}
}

/// The staff console over HTTPS (Connect JSON for browsers and tools): off unless configured.
public struct ConsoleHTTPSSettings: Sendable, Equatable {
    /// "host:port" for staff's browsers: the host name (or address) the certificate names.
    public var listen: String
    /// PEM certificate and key for that host name (default: the node's own).
    public var certificate: String
    public var privateKey: String
    public var maxConnections = 256
    /// HTTP/2 streams one connection may have open at once.
    public var maxConcurrentStreams = 32
    /// A connection with no request in progress for this long is closed.
    public var idleTimeout: Duration = .seconds(60)
}

/// One node's configuration file.
public struct NodeConfiguration: Sendable {
    public var nodeID: String
    public var listen: String
    public var certificate: String
    public var privateKey: String
    public var ca: String
    public var crl: String?
    public var directoryPath: String
    public var dataFolder: String
    public var consoleSocket: String
    /// The key that seals personal data at rest (see `DataKeyFile`); outside the data folder, so
    /// that a copy of the folder alone reveals nothing.
    public var dataKeyFile = ""
    public var maxMessageBytes = 4 * 1024 * 1024
    public var maxConnections = 4096
    public var maxConcurrentStreams: UInt32 = 100
    public var handshakeTimeout: Duration = .seconds(10)
    public var idleTimeout: Duration = .seconds(300)
    public var maxHeaderListBytes: UInt32 = 16 * 1024
    public var resetBurst: UInt64 = 200
    public var resetsPerSecond: UInt64 = 50
    public var keepaliveInterval: Duration = .seconds(60)
    public var keepaliveTimeout: Duration = .seconds(20)
    public var shutdownGrace: Duration = .seconds(10)
    public var maxHandshakesPerAddress = 32
    public var connectionsPerAddressPerSecond = 50
    public var maxConnectionBufferBytes = 16 * 1024 * 1024
    public var stallTimeout: Duration = .seconds(30)
    public var lingerTotal: Duration = .seconds(30)
    public var socketSendBufferBytes = 0
    public var maxQueuedControlFrames = 1000
    public var minPingInterval: Duration = .seconds(10)
    public var maxPingStrikes = 2
    public var maxDecodedElements = 300_000
    /// The largest response to a read (GetCase): a case may outgrow one request (a 5,000-person
    /// batch, persons added later, a long history), and what was accepted must stay readable.
    public var maxReadBytes = 64 * 1024 * 1024
    public var workerThreads = 0
    public var peerLimits = PeerLimits()
    /// The database's memory map and page cache: bounded, so memory does not grow with the history.
    public var storeMemory = StoreMemory()
    /// Duplicate detection's index (NCCT): terms held in memory before they are written out sorted.
    public var matchIndex = MatchIndex.Limits()
    /// Other cases' persons duplicate detection keeps, read and keyed, from one arrival to the next.
    public var duplicateComparedCases = 40_000
    public var delivery = DeliverySettings()
    public var retention = RetentionSettings()
    public var staff = StaffSettings()
    /// `status` and the log warn this long before a certificate or the CRL expires.
    public var expiryWarning: Duration = .seconds(14 * 86_400)
    /// The anonymised statistics export writes counts below this as "<k" (k = 11, as CTDC does).
    public var statisticsMinCount = 11
    /// How often the node looks for deadlines that reached half, three quarters or all of their time.
    public var deadlineCheckInterval: Duration = .seconds(60)
    /// How often the node looks at its directory, CA, CRL, certificate and key files, and reloads
    /// them when one changed; nil: only on SIGHUP or `casebridge node reload`.
    public var watchFilesInterval: Duration? = .seconds(5)
    /// How often an embassy asks NCCT for a newer signed directory (when its own is signed); nil: never.
    public var directoryPollInterval: Duration? = .seconds(60)
    /// How often the node signs the head of its audit chain and lodges it with its peers; nil: never.
    public var auditCheckpointInterval: Duration? = .seconds(300)
    public var consoleHTTPS: ConsoleHTTPSSettings?

    /// What a reader of this node's responses accepts: up to `maxReadBytes`, with an element budget
    /// that grows with it (a large case is many small fields).
    public var readLimits: ProtoLimits {
        ProtoLimits(maxMessageBytes: maxReadBytes, maxElements: max(maxDecodedElements, maxReadBytes / 8))
    }

    /// Reads and checks a configuration file; relative paths are taken from the file's folder.
    public static func load(_ path: String) throws(ConfigurationError) -> NodeConfiguration {
        let object = try JSONFile(path)
        let base = (path as NSString).deletingLastPathComponent
        func file(_ field: String, mustExist: Bool = true) throws(ConfigurationError) -> String {
            let value = try object.string(field)
            let resolved = value.hasPrefix("/") ? value : (base as NSString).appendingPathComponent(value)
            if mustExist, !FileManager.default.fileExists(atPath: resolved) {
                throw object.error(field, "no file at \(resolved)")
            }
            return resolved
        }
        let nodeID = try object.string("node_id")
        guard Validation.isNodeID(nodeID) else { throw object.error("node_id", "may use only a-z, 0-9, '-', '.', '_'") }
        let listen = try object.string("listen")
        guard Validation.isEndpoint(listen) else {
            throw object.error("listen", "must be host:port, not \"\(listen)\"")
        }
        // Revocation is never off by accident (a typo in the key, or a forgotten line). Asked after
        // the keys before it, so that only a key nobody reads can look like a typo of it.
        func crl() throws(ConfigurationError) -> String? {
            guard object.has("crl") else {
                if let typo = object.typo(of: "crl") {
                    throw object.error(typo, "unknown key (did you mean \"crl\"?)")
                }
                throw object.error(
                    "crl",
                    "missing: give the federation CA's CRL file, or \"none\" to run without revocation checks"
                )
            }
            return try object.string("crl") == "none" ? nil : try file("crl")
        }
        var configuration = NodeConfiguration(
            nodeID: nodeID,
            listen: listen,
            certificate: try file("certificate"),
            privateKey: try file("private_key"),
            ca: try file("ca"),
            crl: try crl(),
            directoryPath: try file("directory"),
            dataFolder: try file("data_folder", mustExist: false),
            consoleSocket: try file("console_socket", mustExist: false)
        )
        configuration.dataKeyFile =
            object.has("data_key_file")
            ? try file("data_key_file", mustExist: false)
            : (configuration.dataFolder.hasSuffix("/")
                ? String(configuration.dataFolder.dropLast()) : configuration.dataFolder) + ".key"
        if let limits = try object.optionalObject("limits") {
            configuration.maxMessageBytes = try limits.int(
                "max_message_bytes",
                default: configuration.maxMessageBytes,
                range: 1024...(64 << 20)
            )
            configuration.maxConnections = try limits.int(
                "max_connections",
                default: configuration.maxConnections,
                range: 1...100_000
            )
            configuration.maxConcurrentStreams = UInt32(
                try limits.int("max_concurrent_streams", default: 100, range: 1...10_000)
            )
            configuration.handshakeTimeout = .milliseconds(
                try limits.int("handshake_timeout_ms", default: 10_000, range: 100...600_000)
            )
            configuration.idleTimeout = .seconds(try limits.int("idle_timeout_s", default: 300, range: 1...86_400))
            configuration.maxHeaderListBytes = UInt32(
                try limits.int("max_header_list_bytes", default: 16 * 1024, range: 1024...(1 << 20))
            )
            configuration.resetBurst = UInt64(try limits.int("stream_reset_burst", default: 200, range: 1...100_000))
            configuration.resetsPerSecond = UInt64(
                try limits.int("stream_resets_per_second", default: 50, range: 1...100_000)
            )
            configuration.keepaliveInterval = .seconds(
                try limits.int("keepalive_interval_s", default: 60, range: 1...86_400)
            )
            configuration.keepaliveTimeout = .seconds(
                try limits.int("keepalive_timeout_s", default: 20, range: 1...3_600)
            )
            configuration.shutdownGrace = .seconds(try limits.int("shutdown_grace_s", default: 10, range: 0...3_600))
            configuration.maxHandshakesPerAddress = try limits.int(
                "max_handshakes_per_address",
                default: 32,
                range: 1...100_000
            )
            configuration.connectionsPerAddressPerSecond = try limits.int(
                "new_connections_per_address_per_second",
                default: 50,
                range: 1...100_000
            )
            configuration.maxConnectionBufferBytes = try limits.int(
                "max_connection_buffer_bytes",
                default: 16 << 20,
                range: (256 << 10)...(1 << 30)
            )
            configuration.storeMemory.mapBytes = try limits.int("database_map_mib", default: 0, range: 0...4_096) << 20
            configuration.storeMemory.writerCacheBytes =
                try limits.int("database_cache_mib", default: 64, range: 1...4_096) << 20
            configuration.matchIndex.bufferRows = try limits.int(
                "duplicate_index_memory_terms",
                default: 100_000,
                range: 1...10_000_000
            )
            configuration.duplicateComparedCases = try limits.int(
                "duplicate_compared_cases",
                default: 40_000,
                range: 1...1_000_000
            )
            configuration.storeMemory.filedCasesKept = try limits.int(
                "duplicate_new_cases",
                default: 10_000,
                range: 0...1_000_000
            )
            configuration.stallTimeout = .seconds(try limits.int("stall_timeout_s", default: 30, range: 1...3_600))
            configuration.lingerTotal = .seconds(try limits.int("linger_s", default: 30, range: 1...600))
            configuration.socketSendBufferBytes = try limits.int(
                "socket_send_buffer_bytes",
                default: 0,
                range: 0...(64 << 20)
            )
            configuration.maxQueuedControlFrames = try limits.int(
                "max_queued_control_frames",
                default: 1000,
                range: 16...100_000
            )
            configuration.minPingInterval = .seconds(
                try limits.int("min_ping_interval_s", default: 10, range: 0...86_400)
            )
            configuration.maxPingStrikes = try limits.int("max_ping_strikes", default: 2, range: 0...1_000)
            configuration.maxDecodedElements = try limits.int(
                "max_decoded_elements",
                default: 300_000,
                range: 1_000...10_000_000
            )
            configuration.maxReadBytes = try limits.int(
                "max_read_bytes",
                default: configuration.maxReadBytes,
                range: (1 << 20)...(1 << 30)
            )
            configuration.workerThreads = try limits.int("worker_threads", default: 0, range: 0...256)
            var peer = PeerLimits()
            peer.maxConnections = try limits.int(
                "max_connections_per_peer",
                default: peer.maxConnections,
                range: 1...100_000
            )
            peer.maxConcurrentCalls = try limits.int(
                "max_calls_per_peer",
                default: peer.maxConcurrentCalls,
                range: 1...1_000_000
            )
            peer.maxExpensiveCalls = try limits.int(
                "max_expensive_calls_per_peer",
                default: peer.maxExpensiveCalls,
                range: 1...10_000
            )
            peer.maxBytesPerMinute = try limits.int(
                "max_bytes_per_peer_per_minute",
                default: peer.maxBytesPerMinute,
                range: (1 << 20)...(1 << 40)
            )
            configuration.peerLimits = peer
        }
        if let retention = try object.optionalObject("retention") {
            configuration.retention.daysAfterClosed = try retention.int(
                "days_after_closed",
                default: 365,
                range: 0...36_500
            )
            configuration.retention.checkInterval = .seconds(
                try retention.int(
                    "check_interval_s",
                    default: 3600,
                    range: 1...86_400
                )
            )
        }
        configuration.statisticsMinCount = try object.int("statistics_min_count", default: 11, range: 2...1_000)
        configuration.deadlineCheckInterval = .seconds(
            try object.int("deadline_check_s", default: 60, range: 1...3_600)
        )
        let watchSeconds = try object.int("watch_files_s", default: 5, range: 0...3_600)
        configuration.watchFilesInterval = watchSeconds == 0 ? nil : .seconds(watchSeconds)
        let pollSeconds = try object.int("directory_poll_s", default: 60, range: 0...86_400)
        configuration.directoryPollInterval = pollSeconds == 0 ? nil : .seconds(pollSeconds)
        let checkpointSeconds = try object.int("audit_checkpoint_s", default: 300, range: 0...86_400)
        configuration.auditCheckpointInterval = checkpointSeconds == 0 ? nil : .seconds(checkpointSeconds)
        configuration.expiryWarning = .seconds(
            86_400 * (try object.int("expiry_warning_days", default: 14, range: 1...365))
        )
        if let console = try object.optionalObject("console") {
            let listen = try console.string("listen")
            guard Validation.isEndpoint(listen) else {
                throw console.error("listen", "must be host:port, not \"\(listen)\"")
            }
            func consoleFile(_ field: String, default value: String) throws(ConfigurationError) -> String {
                guard console.has(field) else { return value }
                let path = try console.string(field)
                let resolved = path.hasPrefix("/") ? path : (base as NSString).appendingPathComponent(path)
                guard FileManager.default.fileExists(atPath: resolved) else {
                    throw console.error(field, "no file at \(resolved)")
                }
                return resolved
            }
            var https = ConsoleHTTPSSettings(
                listen: listen,
                certificate: try consoleFile("certificate", default: configuration.certificate),
                privateKey: try consoleFile("private_key", default: configuration.privateKey)
            )
            https.maxConnections = try console.int("max_connections", default: 256, range: 1...65_536)
            https.maxConcurrentStreams = try console.int("max_concurrent_streams", default: 32, range: 1...1000)
            https.idleTimeout = .seconds(try console.int("idle_timeout_s", default: 60, range: 1...86_400))
            configuration.consoleHTTPS = https
        }
        if let staff = try object.optionalObject("staff") {
            configuration.staff.sessionIdle = .seconds(
                try staff.int("session_idle_s", default: 1800, range: 2...86_400)
            )
            configuration.staff.sessionLifetime = .seconds(
                try staff.int("session_lifetime_s", default: 43_200, range: 2...2_592_000)
            )
            configuration.staff.lockoutFailures = try staff.int("lockout_failures", default: 10, range: 1...1000)
            configuration.staff.lockout = .seconds(try staff.int("lockout_s", default: 900, range: 1...604_800))
            configuration.staff.enrolmentValidity = .seconds(
                try staff.int("enrolment_valid_s", default: 259_200, range: 60...2_592_000)
            )
        }
        if let delivery = try object.optionalObject("delivery") {
            configuration.delivery.initialBackoff = .milliseconds(
                try delivery.int("initial_backoff_ms", default: 1000, range: 1...3_600_000)
            )
            configuration.delivery.maxBackoff = .milliseconds(
                try delivery.int("max_backoff_ms", default: 300_000, range: 1...86_400_000)
            )
            configuration.delivery.callTimeout = .milliseconds(
                try delivery.int("call_timeout_ms", default: 15_000, range: 100...600_000)
            )
            configuration.delivery.catchUpPage = UInt32(
                try delivery.int("catch_up_page", default: 1_000, range: 1...10_000)
            )
        }
        try object.refuseUnknownKeys()
        return configuration
    }
}

/// Field access on a JSON object with errors that name the file and field. It notes which keys
/// were asked for, so that a key nobody reads (a typo: "crll" silently turning revocation off) is
/// refused instead of ignored.
struct JSONFile {
    let path: String
    let object: [String: Any]
    let prefix: String
    private let log = KeyLog()

    final class KeyLog {
        var read: Set<String> = []
        var children: [JSONFile] = []
    }

    init(path: String, object: [String: Any], prefix: String) {
        self.path = path
        self.object = object
        self.prefix = prefix
    }

    /// Refuses the first key that was never asked for, here or in the objects read from here,
    /// naming the key it most looks like.
    /// A key of this object nobody asked for that looks like a typo of `field`.
    func typo(of field: String) -> String? {
        object.keys.sorted().first { !log.read.contains($0) && distance($0, field) <= 2 }
    }

    func refuseUnknownKeys() throws(ConfigurationError) {
        for key in object.keys.sorted() where !log.read.contains(key) {
            let near = log.read.min { distance($0, key) < distance($1, key) }
            let hint = near.map { distance($0, key) <= 2 ? " (did you mean \"\($0)\"?)" : "" } ?? ""
            throw error(key, "unknown key\(hint); known here: \(log.read.sorted().joined(separator: ", "))")
        }
        for child in log.children { try child.refuseUnknownKeys() }
    }

    /// Edit distance, for suggesting the key a typo meant.
    private func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return row[b.count]
    }

    init(_ path: String) throws(ConfigurationError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(file: path, field: "", problem: "cannot read the file")
        }
        try self.init(path: path, data: data)
    }

    init(path: String, data: Data) throws(ConfigurationError) {
        let parsed: Any
        do { parsed = try JSONSerialization.jsonObject(with: data) } catch {
            throw ConfigurationError(
                file: path,
                field: "",
                problem: "not valid JSON (\((error as NSError).userInfo["NSDebugDescription"] ?? error))"
            )
        }
        guard let object = parsed as? [String: Any] else {
            throw ConfigurationError(file: path, field: "", problem: "must be a JSON object")
        }
        self.init(path: path, object: object, prefix: "")
    }

    func error(_ field: String, _ problem: String) -> ConfigurationError {
        ConfigurationError(file: path, field: prefix.isEmpty ? field : "\(prefix).\(field)", problem: problem)
    }

    func has(_ field: String) -> Bool {
        log.read.insert(field)
        return object[field] != nil && !(object[field] is NSNull)
    }

    func string(_ field: String) throws(ConfigurationError) -> String {
        log.read.insert(field)
        guard let value = object[field] else { throw error(field, "missing") }
        guard let text = value as? String, !text.isEmpty else { throw error(field, "must be a non-empty string") }
        return text
    }

    func int(_ field: String, default value: Int, range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        log.read.insert(field)
        guard let raw = object[field] else { return value }
        guard let number = raw as? Int, range.contains(number) else {
            throw error(field, "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    func array(_ field: String) throws(ConfigurationError) -> [Any] {
        log.read.insert(field)
        guard let list = object[field] as? [Any] else { throw error(field, "must be a list") }
        return list
    }

    func optionalObject(_ field: String) throws(ConfigurationError) -> JSONFile? {
        log.read.insert(field)
        guard let raw = object[field] else { return nil }
        guard let nested = raw as? [String: Any] else { throw error(field, "must be an object") }
        let child = JSONFile(path: path, object: nested, prefix: prefix.isEmpty ? field : "\(prefix).\(field)")
        log.children.append(child)
        return child
    }
}
