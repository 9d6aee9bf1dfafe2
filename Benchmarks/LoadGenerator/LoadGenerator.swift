import ArgumentParser
import CaseBridgeNet
import CaseBridgeNode
import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeTLS
import Foundation
import Logging
import Synchronization

/// The benchmarks' own load generator: CaseBridge's client against a node, printing one JSON
/// object of results. Benchmarks/run drives it; see Benchmarks/README.md.
@main
struct LoadGenerator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "casebridge-bench",
        subcommands: [
            DurableSubmit.self, IdleConnections.self, EndToEnd.self, WriteRequest.self, SignIn.self, Views.self,
            DuplicateSet.self,
        ]
    )
}

struct PeerOptions: ParsableArguments {
    @Option var endpoint: String
    @Option var target = "ncct"
    @Option var certificate: String
    @Option var key: String
    @Option var ca: String
    @Option var trustDomain = "casebridge.test"

    func tls() throws -> TLSContext {
        try TLSContext(
            .client,
            configuration: TLSConfiguration(
                certificateChainPath: certificate,
                privateKeyPath: key,
                trustedCAPath: ca,
                trustDomain: trustDomain
            )
        )
    }
    var identity: PeerIdentity { PeerIdentity(trustDomain: trustDomain, nodeID: target) }
}

/// A node's console over its local socket, signed in as a supervisor made for the benchmark (the
/// node's first operator is added over the socket, as an operator bootstraps a new node).
func benchmarkConsole(_ socket: String, token: String? = nil) async throws -> (RPCChannel, String) {
    let local = PeerIdentity(trustDomain: "local", nodeID: "node")
    var token = token
    if token == nil {
        let bootstrap = RPCChannel(endpoint: "unix:\(socket)", target: local, tls: nil, logger: silent)
        defer { bootstrap.close() }
        let ops = try await AccountSetup.add(
            "bench-ops",
            name: "Benchmark operator",
            role: .operator,
            password: "benchmark operator password",
            through: bootstrap,
            by: nil
        )
        token =
            try await AccountSetup.add(
                "bench-desk",
                name: "Benchmark desk",
                role: .supervisor,
                password: "benchmark desk password",
                through: bootstrap,
                by: ops.token
            ).token
    }
    let channel = RPCChannel(
        endpoint: "unix:\(socket)",
        target: local,
        tls: nil,
        logger: silent,
        callMetadata: AccountSetup.bearer(token)
    )
    return (channel, token ?? "")
}

extension Duration {
    /// In seconds, with the fraction: for rates and latencies.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

let silent: Logger = {
    var logger = Logger(label: "bench")
    logger.logLevel = .critical
    return logger
}()

/// A unique ~550-byte request: 2 persons and a 300-character summary (or `persons` persons whose
/// names are padded to `nameBytes`, for large valid requests). Each person is someone new (name,
/// date of birth, phone), as in a real day's requests: identical persons in every request made
/// every request a likely duplicate of fifty others, and every index term a common one.
///
/// `realistic`: persons as the duplicate set draws them instead (`Generated.person`): names from a
/// few dozen Vietnamese, Chinese and Indonesian ones, so that many share a family name and a birth
/// year, as a real day's requests do, and duplicate detection meets crowded terms.
func benchmarkRequest(
    origin: String,
    persons: Int = 2,
    nameBytes: Int = 0,
    realistic: Bool = false
) -> InterventionRequest {
    // One seed from the system per request, then a fast generator: drawing every choice from the
    // system (a getrandom call each), formatting with String(format:) and Foundation's UUID (which
    // opens /dev/urandom each time) were 40 % of the generator's CPU, on the cores it shares with
    // the server it measures.
    var random = SeededRandom(UInt64.random(in: 0...UInt64.max))
    var request = InterventionRequest()
    request.requestID = randomUUID(using: &random)
    request.originNode = origin
    request.kind = .rescue
    request.urgency = .urgent
    request.persons = (1...max(1, persons)).map { i in
        var person = Person()
        person.personRef = "P\(i)"
        if realistic { return realisticPerson(person, &random) }
        let name = (0..<3).map { _ in syntheticWord(using: &random) }.joined(separator: " ")
        person.fullName = name + String(repeating: "x", count: max(0, nameBytes - name.utf8.count))
        person.nationality = "ID"
        let (year, month, day) = (
            Int.random(in: 1965...2008, using: &random), Int.random(in: 1...12, using: &random),
            Int.random(in: 1...28, using: &random)
        )
        person.dateOfBirth = "\(year)-\(zeroPadded(month, 2))-\(zeroPadded(day, 2))"
        person.phone = "+62812" + zeroPadded(Int.random(in: 0..<10_000_000, using: &random), 7)
        return person
    }
    var location = Location()
    location.province = "Preah Sihanouk"
    location.siteName = "Benchmark compound"
    request.location = location
    request.summary = String(repeating: "Benchmark summary text. ", count: 13).prefix(300).description
    request.createdAtMs = Int64(Date().timeIntervalSince1970 * 1000)
    return request
}

private func realisticPerson(_ person: Person, _ random: inout SeededRandom) -> Person {
    let traits = Generated.person(&random).traits
    var person = person
    person.fullName = traits.names.joined(separator: " ")
    person.dateOfBirth = traits.dateOfBirth
    person.phone = traits.phone
    if !traits.document.isEmpty {
        var document = TravelDocument()
        document.number = traits.document
        person.travelDocument = document
    }
    return person
}

/// A version 4 UUID in lower case, as nodes write request ids.
func randomUUID(using random: inout SeededRandom) -> String {
    var bytes = withUnsafeBytes(of: (random.next(), random.next())) { Array($0) }
    bytes[6] = bytes[6] & 0x0F | 0x40  // version 4
    bytes[8] = bytes[8] & 0x3F | 0x80  // the RFC 4122 variant
    let hex = Array(Digest.hex(bytes).utf8)
    return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(decoding: hex[$0], as: UTF8.self) }
        .joined(separator: "-")
}

/// `value` in decimal, with leading zeros to `digits` digits.
func zeroPadded(_ value: Int, _ digits: Int) -> String {
    let text = String(value)
    return String(repeating: "0", count: max(0, digits - text.count)) + text
}

/// A made-up name word of two or three syllables (about 10,000 of them).
func syntheticWord(using random: inout SeededRandom) -> String {
    let syllables = [
        "ka", "ri", "na", "to", "su", "wa", "di", "ma", "ye", "lo", "pu", "sen", "tar", "bu", "ha",
        "ni", "go", "ra", "de", "an", "wi",
    ]
    let word = (0..<Int.random(in: 2...3, using: &random)).map { _ in syllables.randomElement(using: &random)! }
        .joined()
    return word.prefix(1).uppercased() + word.dropFirst()
}

/// A value several tasks read and change.
final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ initial: Value) { value = Mutex(initial) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { value.withLock { body(&$0) } }
}

/// User and system CPU seconds this process has used.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Latencies in microseconds → the figures the benchmarks report.
func report(_ name: String, latencies: [Double], seconds: Double, errors: Int, extra: [String: Any] = [:]) {
    let sorted = latencies.sorted()
    func percentile(_ p: Double) -> Double {
        sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }
    var result: [String: Any] = [
        "workload": name, "requests": sorted.count, "errors": errors, "seconds": seconds,
        "rps": Double(sorted.count) / seconds, "p50_us": percentile(0.5), "p90_us": percentile(0.9),
        "p99_us": percentile(0.99),
    ]
    result.merge(extra) { $1 }
    let data = try! JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

final class Samples: Sendable {
    private let state = Mutex<(latencies: [Double], errors: Int, firstError: String)>(([], 0, ""))
    func add(_ microseconds: Double) { state.withLock { $0.latencies.append(microseconds) } }
    func fail(_ error: Error) {
        state.withLock {
            if $0.errors == 0 { $0.firstError = "\(error)" }; $0.errors += 1
        }
    }
    var latencies: [Double] { state.withLock { $0.latencies } }
    var errors: Int { state.withLock { $0.errors } }
    var firstError: String { state.withLock { $0.firstError } }
}

struct DurableSubmit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Unique durable submits for a fixed time."
    )
    @OptionGroup var peer: PeerOptions
    @Option var origin = "embassy-id"
    @Option var connections = 1
    @Option var streams = 1
    @Option var seconds = 10.0
    @Option var warmup = 2.0
    @Option(help: "Persons per request (2 by default).") var persons = 2
    @Option(help: "Pad each person's name to this many bytes (large valid requests).") var nameBytes = 0
    @Flag(help: "Send one request over and over (the idempotent replay path) instead of unique ones.") var replay =
        false
    @Flag(
        help: """
            Persons whose names and birth years many share, as in real requests (Vietnamese, Chinese and \
            Indonesian names from a few dozen, as the duplicate set draws them).
            """
    )
    var realisticNames = false

    func run() async throws {
        let tls = try peer.tls()
        let (origin, persons, nameBytes, realistic) = (origin, persons, nameBytes, realisticNames)
        let fixed = benchmarkRequest(origin: origin, persons: persons, nameBytes: nameBytes)
        let group = EventLoopGroup(threads: 1, name: "bench")
        let channels = (0..<connections).map { _ in
            RPCChannel(endpoint: peer.endpoint, target: peer.identity, tls: tls, logger: silent, group: group)
        }
        let samples = Samples()
        let start = ContinuousClock.now
        let measureFrom = start.advanced(by: .milliseconds(Int(warmup * 1000)))
        let end = measureFrom.advanced(by: .milliseconds(Int(seconds * 1000)))
        // The generator's own CPU over the measured part: it shares this machine's cores with the
        // server it drives, and one at a time its share is on every call's path (any server's).
        let cpuAtStart = Shared<Double?>(nil)
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                try? await Task.sleep(until: measureFrom)
                let now = processCPUSeconds()
                cpuAtStart.withLock { $0 = now }
            }
            for channel in channels {
                for _ in 0..<streams {
                    tasks.addTask {
                        while ContinuousClock.now < end {
                            let request =
                                replay
                                ? fixed
                                : benchmarkRequest(
                                    origin: origin,
                                    persons: persons,
                                    nameBytes: nameBytes,
                                    realistic: realistic
                                )
                            let began = ContinuousClock.now
                            do {
                                _ = try await channel.unary(CaseExchange.submitRequest, request, timeout: .seconds(30))
                                if began >= measureFrom {
                                    samples.add((ContinuousClock.now - began).seconds * 1e6)
                                }
                            } catch {
                                samples.fail(error)
                            }
                        }
                    }
                }
            }
        }
        let clientCPU = processCPUSeconds() - (cpuAtStart.withLock { $0 } ?? 0)
        channels.forEach { $0.close() }
        report(
            "\(replay ? "replay" : "durable")_submit_\(connections * streams)",
            latencies: samples.latencies,
            seconds: seconds,
            errors: samples.errors,
            extra: [
                "in_flight": connections * streams, "first_error": samples.firstError,
                "request_bytes": (try? ProtoCodec.encode(fixed).count) ?? 0,
                "client_cpu_us_per_request": (clientCPU * 1e6 / Double(max(1, samples.latencies.count))).rounded(),
            ]
        )
    }
}

struct IdleConnections: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connections",
        abstract: "Opens N mutually authenticated connections and holds them."
    )
    @OptionGroup var peer: PeerOptions
    @Option var count = 1000
    @Option var hold = 5.0

    func run() async throws {
        let tls = try peer.tls()
        let group = EventLoopGroup(threads: 1, name: "bench")
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let channels = (0..<count).map { _ in
            RPCChannel(endpoint: peer.endpoint, target: peer.identity, tls: tls, logger: silent, group: group)
        }
        let samples = Samples()
        let start = ContinuousClock.now
        // Connect in waves of 50 so the rate measures the server, not a thundering herd of retries.
        for wave in stride(from: 0, to: count, by: 50) {
            await withTaskGroup(of: Void.self) { tasks in
                for channel in channels[wave..<min(wave + 50, count)] {
                    tasks.addTask {
                        let began = ContinuousClock.now
                        do {
                            _ = try await channel.unary(
                                GRPCHealth.Health.check,
                                GRPCHealth.HealthCheckRequest(),
                                timeout: .seconds(30)
                            )
                            let d = ContinuousClock.now - began
                            samples.add(d.seconds * 1e6)
                        } catch { samples.fail(error) }
                    }
                }
            }
        }
        let elapsed = ContinuousClock.now - start
        let seconds = elapsed.seconds
        // Tell the driver the connections are up and idle, then hold them.
        FileHandle.standardError.write(Data("CONNECTED \(samples.latencies.count)\n".utf8))
        try await Task.sleep(for: .milliseconds(Int(hold * 1000)))
        report(
            "connections_\(count)",
            latencies: samples.latencies,
            seconds: seconds,
            errors: samples.errors,
            extra: ["connections_per_s": Double(samples.latencies.count) / seconds, "first_error": samples.firstError]
        )
        channels.forEach { $0.close() }
    }
}

struct EndToEnd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "e2e",
        abstract: "casebridge submit at an embassy → NCCT inbox → acknowledgement back."
    )
    @Option var embassySocket: String
    @Option var ncctSocket: String
    @Option var cases = 1000

    func run() async throws {
        // Staff calls need a signed-in account since issue 11: a supervisor at each node.
        let (embassy, _) = try await benchmarkConsole(embassySocket)
        let (ncct, _) = try await benchmarkConsole(ncctSocket)
        let started = Shared<[String: ContinuousClock.Instant]>([:])
        let samples = Samples()
        let inNCCT = Samples()
        // NCCT's desk: acknowledges every case as soon as it appears in the inbox.
        let desk = Task {
            for try await event in ncct.streaming(Console.watch, [WatchCasesRequest()]) where event.kind == .opened {
                if let began = started.withLock({ $0[event.caseID] }) {
                    let d = ContinuousClock.now - began
                    inNCCT.add(d.seconds * 1e6)
                }
                var update = CaseUpdate()
                update.caseID = event.caseID
                var change = StatusChange()
                change.toStatus = .acknowledged
                update.change = .statusChange(change)
                _ = try await ncct.unary(Console.applyChange, update)
            }
        }
        let done = Shared(0)
        let failed = Shared(0)
        let tracker = Task {
            for try await event in embassy.streaming(Console.watch, [WatchCasesRequest()]) where event.kind == .updated
            {
                guard event.summary?.status == .acknowledged, let began = started.withLock({ $0[event.caseID] }) else {
                    continue
                }
                let d = ContinuousClock.now - began
                samples.add(d.seconds * 1e6)
                if done.withLock({
                    $0 += 1; return $0
                }) + failed.withLock({ $0 }) == cases {
                    return
                }
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        let start = ContinuousClock.now
        for _ in 0..<cases {
            let request = benchmarkRequest(origin: "")
            started.withLock { $0[request.requestID] = ContinuousClock.now }
            _ = try await embassy.unary(Console.submit, request)
            // One case at a time, as a desk officer files them: latency, not throughput. A case not
            // acknowledged within 10 s counts as an error, so a lost acknowledgement cannot hang the run.
            let deadline = ContinuousClock.now.advanced(by: .seconds(10))
            while done.withLock({ $0 }) < started.withLock({ $0.count }) - failed.withLock({ $0 }) {
                if ContinuousClock.now > deadline {
                    failed.withLock { $0 += 1 }
                    break
                }
                try await Task.sleep(for: .microseconds(200))
            }
        }
        if failed.withLock({ $0 }) > 0 { tracker.cancel() }
        _ = await tracker.result
        desk.cancel()
        let elapsed = ContinuousClock.now - start
        let ncctSorted = inNCCT.latencies.sorted()
        report(
            "end_to_end_ack",
            latencies: samples.latencies,
            seconds: elapsed.seconds,
            errors: failed.withLock { $0 },
            extra: ["in_ncct_inbox_p50_us": ncctSorted.isEmpty ? 0 : ncctSorted[ncctSorted.count / 2]]
        )
        embassy.close()
        ncct.close()
    }
}

struct WriteRequest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "write-request",
        abstract: "Writes one gRPC-framed message for h2load."
    )
    @Argument var kind: String
    @Argument var path: String
    @Option var origin = "embassy-id"

    func run() throws {
        let message: [UInt8] =
            kind == "health"
            ? try ProtoCodec.encode(GRPCHealth.HealthCheckRequest())
            : try ProtoCodec.encode(benchmarkRequest(origin: origin))
        let n = UInt32(message.count)
        let framed =
            [
                0, UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8),
                UInt8(truncatingIfNeeded: n),
            ] + message
        try Data(framed).write(to: URL(fileURLWithPath: path))
        if kind == "submit" { print(try ProtoCodec.decode(InterventionRequest.self, from: message).requestID) }
    }
}

struct SignIn: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign-in",
        abstract: "Adds the benchmark's accounts to a new node; prints its supervisor's session token."
    )
    @Option var socket: String

    func run() async throws {
        let (channel, token) = try await benchmarkConsole(socket)
        channel.close()
        print(token)
    }
}

struct Views: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "views",
        abstract: "Times the screens staff open (each the median of several calls) and one audit walk."
    )
    @Option var socket: String
    @Option var token: String
    @Option var repeats = 9

    func run() async throws {
        let (console, _) = try await benchmarkConsole(socket, token: token)
        defer { console.close() }
        var newest = FindCasesRequest()
        newest.limit = 1
        let caseID = try await console.unary(Console.findCases, newest).cases.first?.caseID ?? ""
        func median(_ body: () async throws -> Void) async throws -> Double {
            var times: [Double] = []
            for _ in 0..<repeats {
                let began = ContinuousClock.now
                try await body()
                let d = ContinuousClock.now - began
                times.append(d.seconds * 1e3)
            }
            return times.sorted()[times.count / 2]
        }
        var inbox = ListInboxRequest()
        inbox.limit = 50
        var getCase = GetCaseRequest()
        getCase.caseID = caseID
        // The web console's work queue: new requests, quiet cases, unread messages, the status.
        var fresh = FindCasesRequest()
        fresh.statuses = [.received]
        fresh.order = .urgency
        fresh.limit = 5
        var quiet = FindCasesRequest()
        quiet.statuses = [.acknowledged, .inProgress, .infoRequested, .onHold]
        quiet.updatedUntilMs = Int64(Date().timeIntervalSince1970 * 1000) - 7 * 86_400_000
        quiet.limit = 5
        var unread = ListInboxRequest()
        unread.unreadOnly = true
        unread.limit = 100
        let results: [String: Double] = [
            "inbox_page_ms": try await median { for try await _ in console.streaming(Console.listInbox, [inbox]) {} },
            "case_show_ms": try await median { _ = try await console.unary(Console.getCase, getCase) },
            "status_ms": try await median { _ = try await console.unary(Console.getStatus, StatusRequest()) },
            "work_queue_ms": try await median {
                _ = try await console.unary(Console.findCases, fresh)
                _ = try await console.unary(Console.findCases, quiet)
                for try await _ in console.streaming(Console.listInbox, [unread]) {}
                _ = try await console.unary(Console.getStatus, StatusRequest())
            },
        ]
        let began = ContinuousClock.now
        let verification = try await console.unary(Console.verifyAudit, VerifyAuditRequest(), timeout: .seconds(600))
        let d = ContinuousClock.now - began
        var all: [String: Any] = results.mapValues { ($0 * 100).rounded() / 100 }
        let seconds = d.seconds
        all["audit_verify_s"] = (seconds * 100).rounded() / 100
        all["audit_entries"] = verification.entries
        let data = try JSONSerialization.data(withJSONObject: all, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}
