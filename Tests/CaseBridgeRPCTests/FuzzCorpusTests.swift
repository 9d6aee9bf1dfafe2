import CaseBridgeRPC
import CaseBridgeTLS
import Foundation
import Testing
import TestSupport

/// Every checked-in fuzz input, seeds and fixed crashes alike, replayed through the fuzz harnesses
/// as a plain build runs them (scripts/fuzz does the fuzzing itself): an input that once crashed
/// the node stays fixed.
@Suite("Fuzz corpora replay")
struct FuzzCorpusTests {
    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("casebridge-fuzz").path

    @Test(
        "each harness takes every input of its corpus without a crash",
        arguments: ["decode", "server-session", "console-http"]
    )
    func replay(target: String) throws {
        let corpus = repositoryRoot.appendingPathComponent("Tests/Fuzz/corpus/\(target)")
        let files = try FileManager.default.contentsOfDirectory(atPath: corpus.path)
        let result = try run(Self.binary, [target, corpus.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "replayed \(files.count) inputs through \(target)\n")
    }
}

/// The in-memory session the server-session fuzzer drives is the real server connection: it
/// answers a health check sent as bytes, with no socket.
@Suite("Server session in memory")
struct MemoryServerSessionTests {
    /// (type, stream) of each HTTP/2 frame in `bytes`.
    static func frames(_ bytes: [UInt8]) -> [(type: UInt8, stream: UInt32)] {
        var found: [(UInt8, UInt32)] = []
        var at = 0
        while at + 9 <= bytes.count {
            let length = Int(bytes[at]) << 16 | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2])
            let stream =
                UInt32(bytes[at + 5] & 0x7f) << 24 | UInt32(bytes[at + 6]) << 16 | UInt32(bytes[at + 7]) << 8
                | UInt32(bytes[at + 8])
            found.append((bytes[at + 3], stream))
            at += 9 + length
        }
        return found
    }

    /// Whether `bytes` hold the server's HEADERS on the call's stream.
    static func answers(_ bytes: [UInt8]) -> Bool { frames(bytes).contains { $0.type == 1 && $0.stream == 1 } }

    /// A health check sent as the fuzzer's seed sends it: what the server wrote, write by write, until
    /// it answered.
    func healthCheckWrites() async throws -> [[UInt8]] {
        var router = RPCRouter()
        HealthService(services: []).register(in: &router)
        let host = MemoryServerSession.Host(router: router, logger: testLogger)
        defer { host.shutdown() }
        let session = MemoryServerSession(host: host, peer: PeerIdentity(trustDomain: "casebridge.test", nodeID: "e"))
        defer { session.close() }
        let seed = try Data(
            contentsOf: repositoryRoot.appendingPathComponent("Tests/Fuzz/corpus/server-session/health")
        )
        var writes = session.receiveWrites(Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + Array(seed.dropFirst()))
        for _ in 0..<100 where !writes.contains(where: Self.answers) {
            try await Task.sleep(for: .milliseconds(10))
            writes += session.receiveWrites([])
        }
        return writes
    }

    @Test("a health check seed gets SETTINGS, then response HEADERS on stream 1")
    func healthCheck() async throws {
        let frames = Self.frames(Array(try await healthCheckWrites().joined()))
        #expect(frames.first?.type == 4)  // the server's SETTINGS first
        #expect(frames.contains { $0.type == 1 && $0.stream == 1 })  // then its answer on the call's stream
    }

    @Test("a unary call's headers, message and status leave in one write (one TLS record, one system call)")
    func unaryResponseOneWrite() async throws {
        // HEADERS, DATA and the trailers' HEADERS of stream 1, all in the write that starts the answer.
        let answer = try #require(try await healthCheckWrites().first(where: Self.answers))
        #expect(Self.frames(answer).filter { $0.stream == 1 }.map(\.type) == [1, 0, 1])
    }
}
