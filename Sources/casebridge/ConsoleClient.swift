import ArgumentParser
import CaseBridgeNode
import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeTLS
import Foundation
import Logging

/// Exit codes scripts can rely on.
enum Exit {
    /// Bad input: flags, files, or a message the node found malformed.
    static let badInput: Int32 = 2
    /// The node is not running or its console cannot be reached.
    static let unreachable: Int32 = 3
    /// The node refused: not allowed, no such case, or not possible in the case's state.
    static let refused: Int32 = 4
}

/// Options every staff command takes: which node to talk to, and how to print.
struct NodeOptions: ParsableArguments {
    @Option(name: .long, help: "The node's configuration file (default: $CASEBRIDGE_CONFIG).")
    var config: String?

    @Flag(name: .long, help: "Print JSON (one object per line for lists) instead of tables.")
    var json = false

    func configuration() throws -> NodeConfiguration {
        let fromEnvironment = ProcessInfo.processInfo.environment["CASEBRIDGE_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        guard let path = config ?? fromEnvironment else {
            throw fail("say which node: --config FILE, or set CASEBRIDGE_CONFIG", code: Exit.badInput)
        }
        do { return try NodeConfiguration.load(path) } catch { throw fail("\(error)", code: Exit.badInput) }
    }

    /// A console connection to the local node.
    func console() throws -> ConsoleConnection {
        let configuration = try configuration()
        guard FileManager.default.fileExists(atPath: configuration.consoleSocket) else {
            throw fail(
                "node \(configuration.nodeID) is not running (no console socket at \(configuration.consoleSocket))",
                code: Exit.unreachable
            )
        }
        return ConsoleConnection(configuration: configuration, session: SessionFile.token(for: configuration.nodeID))
    }

    /// A sentence for people, or the same facts as one JSON object for scripts.
    func say(_ sentence: String, _ object: [String: Any]) {
        if json { Output.json(object) } else { print(sentence) }
    }
}

/// --json for commands that do not talk to a node.
struct JSONOption: ParsableArguments {
    @Flag(name: .long, help: "Print JSON instead of text.")
    var json = false

    /// A sentence for people, or the same facts as one JSON object for scripts.
    func say(_ sentence: String, _ object: [String: Any]) {
        if json { Output.json(object) } else { print(sentence) }
    }
}

/// The node's console service over its Unix socket.
struct ConsoleConnection {
    let configuration: NodeConfiguration
    let channel: RPCChannel
    /// The signed-in session (`casebridge login`), sent with every call.
    let session: String?

    init(configuration: NodeConfiguration, session: String? = nil) {
        self.session = session
        self.configuration = configuration
        var logger = Logger(label: "casebridge.cli")
        logger.logLevel = .critical
        var client = RPCClientConfiguration()
        client.maxReceiveMessageBytes = configuration.maxReadBytes
        client.protoLimits = configuration.readLimits
        channel = RPCChannel(
            endpoint: "unix:\(configuration.consoleSocket)",
            target: PeerIdentity(trustDomain: "local", nodeID: configuration.nodeID),
            tls: nil,
            configuration: client,
            logger: logger,
            callMetadata: AccountSetup.bearer(session)
        )
    }

    /// Whether the node answers on its console socket (operations that need it stopped refuse then).
    static func isRunning(_ configuration: NodeConfiguration) async -> Bool {
        guard FileManager.default.fileExists(atPath: configuration.consoleSocket) else { return false }
        let console = ConsoleConnection(configuration: configuration)
        defer { console.channel.close() }
        return (try? await console.call(GRPCHealth.Health.check, GRPCHealth.HealthCheckRequest())) != nil
    }

    /// The case id that `name` means: a whole id, a unique prefix of one (at least 4 characters), or
    /// the embassy's own reference for the case. Otherwise exit 4 (no such case) or 2 (ambiguous).
    func resolveCase(_ name: String) async throws -> String {
        if Validation.isUUID(name) { return name }
        var request = ListCasesRequest()
        request.limit = 10_000
        let cases = try await stream(Console.listCases, request)
        let byReference = cases.filter {
            !$0.originReference.isEmpty && $0.originReference.lowercased() == name.lowercased()
        }
        let byPrefix = name.count >= 4 ? cases.filter { $0.caseID.hasPrefix(name.lowercased()) } : []
        let matches = byReference.isEmpty ? byPrefix : byReference
        guard matches.count <= 1 else {
            let named = matches.prefix(5).map {
                Output.shortID($0.caseID) + ($0.originReference.isEmpty ? "" : " (\($0.originReference))")
            }
            throw fail(
                "\(name) matches \(matches.count) cases (\(named.joined(separator: ", "))); give more of the id",
                code: Exit.badInput
            )
        }
        guard let match = matches.first else {
            let hint = name.count < 4 ? "; give at least 4 characters of the id, or the case's reference" : ""
            throw fail("no case \(name) at node \(configuration.nodeID)\(hint)", code: Exit.refused)
        }
        return match.caseID
    }

    func call<Request, Response>(_ method: RPCMethod<Request, Response>, _ request: Request) async throws -> Response {
        do { return try await channel.unary(method, request, timeout: .seconds(60)) } catch {
            throw Self.exit(for: error, node: configuration.nodeID)
        }
    }

    func stream<Request, Response>(
        _ method: RPCMethod<Request, Response>,
        _ request: Request
    ) async throws -> [Response] {
        var all: [Response] = []
        do {
            for try await item in channel.streaming(method, [request], timeout: .seconds(60)) {
                all.append(item)
            }
        } catch {
            throw Self.exit(for: error, node: configuration.nodeID)
        }
        return all
    }

    /// One readable line and the exit code for a failed call.
    static func exit(for error: Error, node: String) -> ExitCode {
        guard let error = error as? RPCError else { return fail("\(error)") }
        switch error.code {
        case .unavailable where error.message.contains("cannot reach") || error.message.contains("connection"):
            return fail("node \(node) is not running or not answering on its console socket", code: Exit.unreachable)
        case .invalidArgument: return fail(error.message, code: Exit.badInput)
        case .unauthenticated:
            let hint = error.message.contains("casebridge login") ? "" : " (casebridge login)"
            return fail("node \(node): \(error.message)\(hint)", code: Exit.refused)
        case .notFound, .permissionDenied, .failedPrecondition, .alreadyExists:
            return fail(error.message, code: Exit.refused)
        default: return fail("\(error)")
        }
    }
}

/// Fixed-width columns for people; JSON for scripts.
enum Output {
    /// Tables fit this many terminal columns unless --wide.
    static let tableWidth = 100

    /// Columns sized by what a terminal shows (East Asian wide characters take two columns, combining
    /// marks none). Too wide a table narrows its `flexible` columns in the order given, each down to
    /// its header's width before the next, cutting cells with "…"; `wide` prints every cell whole.
    static func table(_ headers: [String], _ rows: [[String]], flexible: [String] = [], wide: Bool = false) {
        var widths = headers.indices.map { column in
            ([headers[column]] + rows.map { $0[column] }).map(displayWidth).max() ?? 0
        }
        let gaps = 2 * (headers.count - 1)
        for name in flexible where !wide {
            guard let column = headers.firstIndex(of: name) else { continue }
            let excess = widths.reduce(0, +) + gaps - tableWidth
            guard excess > 0 else { break }
            let floor = min(widths[column], max(displayWidth(name), 8))
            widths[column] = max(widths[column] - excess, floor)
        }
        func line(_ cells: [String]) -> String {
            zip(cells, widths).map { cell, width in
                let shown = fit(cell, width)
                return shown + String(repeating: " ", count: width - displayWidth(shown))
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        print(line(headers))
        for row in rows { print(line(row)) }
    }

    /// `text` cut to `width` terminal columns, ending in "…" when cut.
    static func fit(_ text: String, _ width: Int) -> String {
        guard displayWidth(text) > width else { return text }
        var kept = ""
        var used = 0
        for character in text {
            let w = displayWidth(String(character))
            if used + w > width - 1 { break }
            kept.append(character)
            used += w
        }
        return kept + "…"
    }

    /// Terminal columns a string takes: two for East Asian wide and fullwidth characters (CJK,
    /// Hangul, fullwidth forms, most emoji), none for combining marks and format characters.
    static func displayWidth(_ text: String) -> Int {
        text.unicodeScalars.reduce(0) { total, scalar in
            switch scalar.properties.generalCategory {
            case .nonspacingMark, .enclosingMark, .format: return total
            default: break
            }
            let v = scalar.value
            let wide =
                (0x1100...0x115F).contains(v) || (0x2E80...0xA4CF).contains(v) && v != 0x303F
                || (0xAC00...0xD7A3).contains(v) || (0xF900...0xFAFF).contains(v) || (0xFE30...0xFE4F).contains(v)
                || (0xFF00...0xFF60).contains(v) || (0xFFE0...0xFFE6).contains(v) || (0x1F300...0x1F64F).contains(v)
                || (0x1F900...0x1F9FF).contains(v) || (0x20000...0x3FFFD).contains(v)
            return total + (wide ? 2 : 1)
        }
    }

    /// The first eight characters of a case id: enough to name a case (any unique prefix works).
    static func shortID(_ caseID: String) -> String { String(caseID.prefix(8)) }

    /// A list as every list command prints it: one JSON object per line with --json, `empty` when
    /// there is nothing; otherwise false, and the caller prints its table.
    static func printedAsJSONOrEmpty<M: ProtoMessage>(_ entries: [M], json: Bool, empty: String) -> Bool {
        if json {
            entries.forEach { Output.json(ProtoJSON.object($0)) }
            return true
        }
        if entries.isEmpty { print(empty) }
        return entries.isEmpty
    }

    static func json(_ object: Any) {
        let data =
            (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data("{}".utf8)
        print(String(decoding: data, as: UTF8.self))
    }

    /// A time in a list row: month, day, hours and minutes (UTC).
    static func shortTime(_ ms: Int64) -> String {
        let full = time(ms)
        return full == "-" ? full : String(full.dropFirst(5).prefix(11))
    }

    static func time(_ ms: Int64) -> String {
        guard ms > 0 else { return "-" }
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000)) + "Z"
    }

    static func counts(_ counts: [OutcomeCount]) -> String {
        counts.map { "\($0.status.description.replacingOccurrences(of: "_", with: " ")) \($0.count)" }.joined(
            separator: ", "
        )
    }

    /// Progress for people watching a terminal; scripts reading stderr see only real errors.
    static func progress(_ message: String) {
        guard isatty(STDERR_FILENO) == 1 else { return }
        FileHandle.standardError.write(Data("· \(message)\n".utf8))
    }
}
