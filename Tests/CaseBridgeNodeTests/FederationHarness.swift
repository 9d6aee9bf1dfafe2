import CaseBridgeNet
import CaseBridgeNode
import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeTLS
import Foundation
import Testing
import Logging
import TestSupport

let quietLogger: Logger = {
    var logger = Logger(label: "casebridge.test")
    logger.logLevel = .critical
    return logger
}()

/// The casebridge binary next to the test bundle (both are built by `swift build`).
let casebridgeBinary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    .appendingPathComponent("casebridge").path

/// A federation of real node processes on loopback, each with its own certificate, database,
/// configuration and console socket, in a temporary folder.
final class TestFederation: @unchecked Sendable {
    let folder: URL
    let nodes: [String]
    let certs: URL
    let trustDomain: String
    private(set) var ports: [String: Int] = [:]
    /// HTTPS console ports, when made with `console: true`.
    private(set) var consolePorts: [String: Int] = [:]
    private var processes: [String: Process] = [:]
    /// One loop for every console channel the tests open: a loop of its own per channel kept two
    /// descriptors each (libevent's), and past ~1,360 open descriptors Foundation's Process.run
    /// can crash the test process (a /proc/self/fd over-read, swift-corelibs-foundation #5472).
    private let consoleGroup = EventLoopGroup(threads: 1, name: "cb-test-console")
    /// Each node's test staff, made at its first start: an operator and a supervisor the tests
    /// act as (console channels and the casebridge command carry the supervisor's session).
    private(set) var operators: [String: AccountSetup] = [:]
    private(set) var supervisors: [String: AccountSetup] = [:]
    /// For the casebridge command: a sessions folder per test account ("sup", "op").
    func cliEnvironment(as login: String = "sup") -> [String: String] {
        ["CASEBRIDGE_SESSIONS": folder.appendingPathComponent("sessions/\(login)").path]
    }
    static let certs = repositoryRoot.appendingPathComponent("certs")

    /// `certs` holds ca.pem, crl.pem (optional) and nodes/<id>.pem and .key.
    /// `limits` goes into every node's configuration as its "limits" object.
    init(
        nodes: [String] = ["ncct", "embassy-id", "embassy-cn"],
        initialBackoffMs: Int = 50,
        maxBackoffMs: Int = 400,
        certs: URL = TestFederation.certs,
        trustDomain: String = "casebridge.test",
        limits: [String: Any] = [:],
        retention: [String: Any] = [:],
        staff: [String: Any] = [:],
        console: Bool = false
    ) throws {
        folder = try makeTemporaryFolder("fed")
        self.nodes = nodes
        self.certs = certs
        self.trustDomain = trustDomain
        for node in nodes { ports[node] = SocketAddress.freeLoopbackPort() }
        try writeDirectory(nodes)
        for node in nodes {
            // Git checks keys out world-readable; a node refuses a key others can read.
            chmod(certs.appendingPathComponent("nodes/\(node).key").path, 0o600)
            var config: [String: Any] = [
                "node_id": node, "listen": "127.0.0.1:\(ports[node]!)",
                "certificate": certs.appendingPathComponent("nodes/\(node).pem").path,
                "private_key": certs.appendingPathComponent("nodes/\(node).key").path,
                "ca": certs.appendingPathComponent("ca.pem").path,
                "directory": "directory.json", "data_folder": "\(node)/data", "console_socket": "\(node)/console.sock",
                "delivery": [
                    "initial_backoff_ms": initialBackoffMs, "max_backoff_ms": maxBackoffMs, "call_timeout_ms": 5000,
                ],
            ]
            if !limits.isEmpty { config["limits"] = limits }
            if !retention.isEmpty { config["retention"] = retention }
            if !staff.isEmpty { config["staff"] = staff }
            if console {
                // The HTTPS console with the node's own certificate (it names 127.0.0.1).
                let port = SocketAddress.freeLoopbackPort()
                consolePorts[node] = port
                config["console"] = ["listen": "127.0.0.1:\(port)"]
            }
            let crl = certs.appendingPathComponent("crl.pem")
            config["crl"] = FileManager.default.fileExists(atPath: crl.path) ? crl.path : "none"
            try FileManager.default.createDirectory(
                at: folder.appendingPathComponent(node),
                withIntermediateDirectories: true
            )
            try JSONSerialization.data(withJSONObject: config, options: .prettyPrinted).write(to: configPath(node))
        }
    }

    /// The directory every node reads (at start, and at a reload), naming these nodes; written to
    /// `path` instead when given (a directory to sign).
    func writeDirectory(_ members: [String], version: Int? = nil, to path: URL? = nil) throws {
        let represents = ["ncct": "KH", "embassy-id": "ID", "embassy-cn": "CN", "embassy-vn": "VN"]
        var directory: [String: Any] = [
            "trust_domain": trustDomain,
            "nodes": members.map { node in
                [
                    "id": node, "role": node == "ncct" ? "ncct" : "embassy", "represents": represents[node] ?? "XX",
                    "endpoint": "127.0.0.1:\(ports[node]!)", "display_name": node.uppercased(),
                ] as [String: Any]
            },
        ]
        if let version { directory["version"] = version }
        try JSONSerialization.data(withJSONObject: directory, options: .prettyPrinted).write(
            to: path ?? folder.appendingPathComponent("directory.json")
        )
    }

    /// An embassy files a case and NCCT acknowledges it: true when the case reached NCCT and the
    /// acknowledgement came back (a round trip over both delivery workers).
    func exchangeACase(from embassy: String) async throws -> Bool {
        let (filer, ncct) = (console(embassy), console("ncct"))
        defer {
            filer.close()
            ncct.close()
        }
        let caseID = try await filer.unary(Console.submit, Make.request(persons: 1)).caseID
        let arrived = "SELECT COUNT(*) FROM cases WHERE case_id = '\(caseID)'"
        guard try await eventually(30, { try sql("ncct", arrived) == ["1"] }) else { return false }
        _ = try await ncct.unary(Console.applyChange, Make.status(caseID, .acknowledged))
        var lookup = GetCaseRequest()
        lookup.caseID = caseID
        return try await eventually { try await filer.unary(Console.getCase, lookup).status == .acknowledged }
    }

    /// Changes a node's configuration file (before it starts, or for its next start).
    func configure(_ node: String, _ change: (inout [String: Any]) -> Void) throws {
        let data = try Data(contentsOf: configPath(node))
        var config = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        change(&config)
        try JSONSerialization.data(withJSONObject: config, options: .prettyPrinted).write(to: configPath(node))
    }

    func configPath(_ node: String) -> URL { folder.appendingPathComponent("\(node).json") }
    func socket(_ node: String) -> String { folder.appendingPathComponent("\(node)/console.sock").path }
    func database(_ node: String) -> String { folder.appendingPathComponent("\(node)/data/casebridge.sqlite3").path }

    /// Starts a node process and waits until its console answers.
    func start(_ node: String) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: casebridgeBinary)
        process.arguments = ["node", "run", "--config", configPath(node).path, "--log-level", "warning"]
        let log = folder.appendingPathComponent("\(node).log")
        if !FileManager.default.fileExists(atPath: log.path) {
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        process.standardError = handle
        process.standardOutput = handle
        try process.run()
        processes[node] = process
        let console = self.console(node)
        defer { console.close() }
        for _ in 0..<500 {
            guard process.isRunning else { break }
            let health = try? await console.unary(
                GRPCHealth.Health.check,
                GRPCHealth.HealthCheckRequest(),
                timeout: .seconds(1)
            )
            if health != nil {
                if supervisors[node] == nil { try await setUpStaff(node) }
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw RPCError(.unavailable, "node \(node) did not start: \(self.log(node))")
    }

    /// The node's first operator (over the local socket, as an operator bootstraps) and a supervisor,
    /// both enrolled with TOTP codes computed here; the supervisor's session file for the command.
    private func setUpStaff(_ node: String) async throws {
        let channel = RPCChannel(
            endpoint: "unix:\(socket(node))",
            target: PeerIdentity(trustDomain: trustDomain, nodeID: node),
            tls: nil,
            logger: quietLogger
        )
        defer { channel.close() }
        let ops = try await AccountSetup.add(
            "op",
            name: "Operator \(node)",
            role: .operator,
            password: "operator password \(node)",
            through: channel,
            by: nil
        )
        let supervisor = try await AccountSetup.add(
            "sup",
            name: "Supervisor \(node)",
            role: .supervisor,
            password: "supervisor password \(node)",
            through: channel,
            by: ops.token
        )
        operators[node] = ops
        supervisors[node] = supervisor
        for account in [ops, supervisor] {
            let sessions = folder.appendingPathComponent("sessions/\(account.login)")
            try FileManager.default.createDirectory(at: sessions, withIntermediateDirectories: true)
            try Data(account.token.utf8).write(to: sessions.appendingPathComponent("\(node).session"))
        }
    }

    /// Runs the casebridge command against `node` as its test supervisor (or `as: "op"`, its operator).
    func cli(
        _ arguments: [String],
        node: String? = nil,
        input: String? = nil,
        as login: String = "sup"
    ) throws
        -> ProcessResult
    {
        try run(
            casebridgeBinary,
            arguments + (node.map { ["--config", configPath($0).path] } ?? []),
            environment: cliEnvironment(as: login),
            input: input
        )
    }

    /// The node process's resident memory and open file descriptors, from /proc.
    func resources(_ node: String) -> (rssKiB: Int, openFiles: Int) {
        guard let pid = processes[node]?.processIdentifier,
            let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        else { return (0, 0) }
        let rss =
            status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
            .flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true)[1]) } ?? 0
        let files = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
        return (rss, files)
    }

    var isRunning: [String: Bool] { processes.mapValues(\.isRunning) }

    func log(_ node: String) -> String {
        (try? String(contentsOf: folder.appendingPathComponent("\(node).log"), encoding: .utf8)) ?? ""
    }

    /// SIGKILL: no chance to finish anything.
    func kill(_ node: String) {
        guard let process = processes.removeValue(forKey: node) else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERM: a graceful stop.
    func stop(_ node: String) {
        guard let process = processes.removeValue(forKey: node) else { return }
        process.terminate()
        process.waitUntilExit()
    }

    /// Stops every node, then checks what they left: no file a node wrote (its data folder, its key,
    /// its log) holds the fixture persons of `Make.request` in clear, whatever the test did.
    func stopAll(sourceLocation: SourceLocation = #_sourceLocation) {
        stopProcesses()
        let hits = personalDataInClear()
        if !hits.isEmpty { Issue.record("personal data in clear: \(hits)", sourceLocation: sourceLocation) }
    }

    private func stopProcesses() {
        for node in Array(processes.keys) { stop(node) }
    }

    /// The fixture's names, phones and summary, wherever the nodes wrote them in clear.
    func personalDataInClear() -> [String] {
        let needles = ["+62812000", "Person 0", "Person 1", "Held at the compound"]
        return nodes.flatMap { node in
            plainTextHits(in: folder.appendingPathComponent(node), needles)
                + plainTextHits(in: folder.appendingPathComponent("\(node).log"), needles)
        }
    }

    /// The node's console, as its test supervisor (`token` for another account's session).
    func console(_ node: String, token: String? = nil) -> RPCChannel {
        RPCChannel(
            endpoint: "unix:\(socket(node))",
            target: PeerIdentity(trustDomain: trustDomain, nodeID: node),
            tls: nil,
            logger: quietLogger,
            group: consoleGroup,
            callMetadata: AccountSetup.bearer(token ?? supervisors[node]?.token)
        )
    }

    /// A channel to `node`'s exchange port, presenting `as`'s certificate.
    func peerChannel(to node: String, as caller: String) throws -> RPCChannel {
        let tls = TLSConfiguration(
            certificateChainPath: Self.certs.appendingPathComponent("nodes/\(caller).pem").path,
            privateKeyPath: Self.certs.appendingPathComponent("nodes/\(caller).key").path,
            trustedCAPath: Self.certs.appendingPathComponent("ca.pem").path,
            trustDomain: "casebridge.test"
        )
        return RPCChannel(
            endpoint: "127.0.0.1:\(ports[node]!)",
            target: PeerIdentity(trustDomain: "casebridge.test", nodeID: node),
            tls: try TLSContext(.client, configuration: tls),
            logger: quietLogger
        )
    }

    /// Runs SQL against a node's database with Python's sqlite3 (an independent reader).
    func sql(_ node: String, _ query: String) throws -> [String] { try sql(file: database(node), query) }

    /// Runs SQL against any SQLite file, as `sql(_:_:)` does.
    func sql(file: String, _ query: String) throws -> [String] {
        let script =
            "import sqlite3,sys; c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', uri=True); "
            + "[print('|'.join(str(v) for v in r)) for r in c.execute(sys.argv[2])]"
        let result = try run("python3", ["-c", script, file, query])
        guard result.status == 0 else { throw RPCError(.internal, "sql failed: \(result.stderr)") }
        return result.stdout.split(separator: "\n").map(String.init)
    }

    /// Polls until `condition` holds, for up to `seconds`.
    func eventually(_ seconds: Double = 30, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if (try? await condition()) == true { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }

    deinit {
        stopProcesses()
        consoleGroup.shutdown()
        try? FileManager.default.removeItem(at: folder)
    }
}

/// Files under `folder` (databases, WALs, logs, keys: everything) holding any of `needles` in clear,
/// as "file: needle". What someone with a copy of a node's folder could read.
func plainTextHits(in folder: URL, _ needles: [String]) -> [String] {
    var hits: [String] = []
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isFolder) else { return [] }
    let files =
        isFolder.boolValue
        ? FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL } ?? []
        : [folder]
    for file in files {
        guard let bytes = try? Data(contentsOf: file) else { continue }
        for needle in needles where bytes.range(of: Data(needle.utf8)) != nil {
            hits.append("\(file.path.dropFirst(folder.path.count)): \(needle)")
        }
    }
    return hits
}

/// Builders for the messages staff send.
enum Make {
    static func request(persons count: Int, kind: RequestKind = .rescue) -> InterventionRequest {
        var request = InterventionRequest()
        request.kind = kind
        request.urgency = .immediate
        request.persons = (0..<count).map { i in
            var person = Person()
            person.personRef = "P\(i)"
            person.fullName = "Person \(i)"
            person.nationality = "ID"
            person.phone = "+62812000\(String(format: "%05d", i))"
            return person
        }
        var location = Location()
        location.province = "Preah Sihanouk"
        location.siteName = "Compound 7"
        request.location = location
        request.summary = "Held at the compound; passports taken."
        request.originReference = "REF-\(count)"
        return request
    }

    /// A request as an embassy node sends it to NCCT: with a fresh id and that node as its origin.
    static func request(persons count: Int, from node: String) -> InterventionRequest {
        var request = request(persons: count)
        request.requestID = UUID().uuidString.lowercased()
        request.originNode = node
        return request
    }

    static func update(_ caseID: String, _ change: CaseUpdate.Change) -> CaseUpdate {
        var update = CaseUpdate()
        update.caseID = caseID
        update.author = "Test Officer"
        update.change = change
        return update
    }

    static func status(_ caseID: String, _ status: CaseStatus) -> CaseUpdate {
        var change = StatusChange()
        change.toStatus = status
        return update(caseID, .statusChange(change))
    }

    static func step(_ caseID: String, _ step: BusinessStep) -> CaseUpdate {
        var change = StepChange()
        change.step = step
        return update(caseID, .stepChange(change))
    }

    static func note(_ caseID: String, _ text: String) -> CaseUpdate {
        var note = Note()
        note.text = text
        return update(caseID, .note(note))
    }

    static func outcomes(_ caseID: String, _ statuses: [String: PersonStatus]) -> CaseUpdate {
        var outcomes = PersonOutcomes()
        outcomes.outcomes = statuses.sorted { $0.key < $1.key }.map { ref, status in
            var outcome = PersonOutcome()
            outcome.personRef = ref
            outcome.status = status
            return outcome
        }
        return update(caseID, .personOutcomes(outcomes))
    }
}

/// A federation CA of its own made with `casebridge certs`, as a CA operator would: ca/ (the CA's
/// folder), nodes/<id>.pem and .key, and ca.pem and crl.pem copied beside them for TestFederation.
struct TestAuthority {
    let folder: URL
    /// The CA's own folder (ca.pem, ca.key, revoked.json, crl.pem).
    let ca: String
    /// What `certs crl` said when the first CRL was issued.
    let firstCRL: ProcessResult

    init(nodes: [String], crlDays: Int = 30) throws {
        let folder = try makeTemporaryFolder("ca")
        let ca = folder.appendingPathComponent("ca").path
        try Self.certs(["create-ca", "--out", ca])
        for node in nodes {
            try Self.certs([
                "issue", "--ca", ca, "--node-id", node, "--trust-domain", "casebridge.test", "--out",
                folder.appendingPathComponent("nodes").path,
            ])
        }
        firstCRL = try Self.certs(["crl", "--ca", ca, "--days", "\(crlDays)"])
        for file in ["ca.pem", "crl.pem"] {
            try FileManager.default.copyItem(atPath: "\(ca)/\(file)", toPath: folder.appendingPathComponent(file).path)
        }
        (self.folder, self.ca) = (folder, ca)
    }

    /// Runs `casebridge certs`, expecting success.
    @discardableResult
    static func certs(_ arguments: [String]) throws -> ProcessResult {
        let result = try run(casebridgeBinary, ["certs"] + arguments)
        #expect(result.status == 0, "\(arguments): \(result.stderr)")
        return result
    }
}
