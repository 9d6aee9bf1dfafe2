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
            throw fail("node \(configuration.nodeID) is not running (no console socket at \(configuration.consoleSocket))", code: Exit.unreachable)
        }
        return ConsoleConnection(configuration: configuration)
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

    init(configuration: NodeConfiguration) {
        self.configuration = configuration
        var logger = Logger(label: "casebridge.cli")
        logger.logLevel = .critical
        channel = RPCChannel(endpoint: "unix:\(configuration.consoleSocket)", target: PeerIdentity(trustDomain: "local", nodeID: configuration.nodeID),
                             tls: nil, logger: logger)
    }

    func call<Request, Response>(_ method: RPCMethod<Request, Response>, _ request: Request) async throws -> Response {
        do { return try await channel.unary(method, request, timeout: .seconds(60)) } catch { throw Self.exit(for: error, node: configuration.nodeID) }
    }

    func stream<Request, Response>(_ method: RPCMethod<Request, Response>, _ request: Request) async throws -> [Response] {
        var all: [Response] = []
        do { for try await item in channel.streaming(method, [request], timeout: .seconds(60)) { all.append(item) } } catch {
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
        case .notFound, .permissionDenied, .failedPrecondition, .alreadyExists: return fail(error.message, code: Exit.refused)
        default: return fail("\(error)")
        }
    }
}

/// Fixed-width columns for people; JSON for scripts.
enum Output {
    static func table(_ headers: [String], _ rows: [[String]]) {
        let widths = headers.indices.map { column in ([headers[column]] + rows.map { $0[column] }).map(\.count).max() ?? 0 }
        func line(_ cells: [String]) -> String {
            zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }
        print(line(headers))
        for row in rows { print(line(row)) }
    }

    static func json(_ object: Any) {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        print(String(decoding: data, as: UTF8.self))
    }

    static func time(_ ms: Int64) -> String {
        guard ms > 0 else { return "-" }
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000)) + "Z"
    }

    static func counts(_ counts: [OutcomeCount]) -> String {
        counts.map { "\($0.status.description.replacingOccurrences(of: "_", with: " ")) \($0.count)" }.joined(separator: ", ")
    }

    /// Progress for people watching a terminal; scripts reading stderr see only real errors.
    static func progress(_ message: String) {
        guard isatty(STDERR_FILENO) == 1 else { return }
        FileHandle.standardError.write(Data("· \(message)\n".utf8))
    }
}
