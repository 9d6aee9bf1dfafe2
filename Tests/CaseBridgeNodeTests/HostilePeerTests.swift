import CaseBridgeProto
import CaseBridgeRPC
import Foundation
import Testing
import TestSupport

let hostilePeer = repositoryRoot.appendingPathComponent("Tests/Peers/hostile.py").path

/// A member (embassy-cn) or a stranger attacks NCCT's node with Python's h2 and grpcio while
/// another member (embassy-id) keeps working. For each attack: the node stays up, embassy-id's
/// calls keep succeeding, memory and open files stay under the configured limits, and the
/// refusal is in the audit log. How fast embassy-id is served meanwhile is measured in
/// Benchmarks/, not asserted here.
@Suite("Hostile peers and strangers", .serialized)
struct HostilePeerTests {
    static var limits: [String: Any] {
        [
            "stall_timeout_s": 2, "linger_s": 3, "max_connections": 300, "max_connections_per_peer": 8,
            "max_handshakes_per_address": 16, "max_connection_buffer_bytes": 4 << 20,
            // A small kernel buffer, so a peer that never reads is felt at once however slowly it sends.
            "socket_send_buffer_bytes": 65_536,
        ]
    }
    /// Resident memory the NCCT node may reach during any attack here.
    static let rssCapKiB = 256 * 1024

    let federation: TestFederation
    let legitimate: RPCChannel

    init() async throws {
        federation = try TestFederation(limits: Self.limits)
        try await federation.start("ncct")
        legitimate = try federation.peerChannel(to: "ncct", as: "embassy-id")
    }

    func attack(
        _ name: String,
        as member: String? = "embassy-cn",
        seconds: Double = 4,
        count: Int = 1
    ) async throws -> [String: Any] {
        var arguments = [
            hostilePeer, name, "--port", "\(federation.ports["ncct"]!)",
            "--ca", TestFederation.certs.appendingPathComponent("ca.pem").path,
            "--seconds", "\(seconds)", "--count", "\(count)",
        ]
        if let member {
            arguments += [
                "--cert", TestFederation.certs.appendingPathComponent("nodes/\(member).pem").path,
                "--key", TestFederation.certs.appendingPathComponent("nodes/\(member).key").path,
            ]
        }
        async let outcome = runDetached("python3", arguments)
        // Meanwhile the other embassy keeps filing requests, and the node's footprint is watched.
        var filed = 0, peakRSS = 0, peakFiles = 0
        let until = Date().addingTimeInterval(seconds)
        repeat {
            let request = Make.request(persons: 3, from: "embassy-id")
            let receipt = try await legitimate.unary(CaseExchange.submitRequest, request, timeout: .seconds(10))
            #expect(receipt.caseID == request.requestID)
            filed += 1
            let (rss, files) = federation.resources("ncct")
            peakRSS = max(peakRSS, rss)
            peakFiles = max(peakFiles, files)
            try await Task.sleep(for: .milliseconds(100))
        } while Date() < until
        let result = try await outcome
        #expect(result.status == 0, "\(result.stderr)")
        let report = try #require(
            try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
            "\(result.stdout) \(result.stderr)"
        )
        #expect(filed > 0)
        #expect(federation.isRunning["ncct"] == true, "\(federation.log("ncct"))")
        #expect(peakRSS < Self.rssCapKiB, "NCCT reached \(peakRSS) KiB during \(name)")
        #expect(peakFiles < 300 + 64, "NCCT held \(peakFiles) files during \(name)")
        return report
    }

    func auditCount(_ event: String) throws -> Int {
        Int(try federation.sql("ncct", "SELECT COUNT(*) FROM audit WHERE event = '\(event)'").first ?? "0") ?? 0
    }

    func eventuallyAudited(_ event: String) async throws -> Bool {
        try await federation.eventually(10) { try auditCount(event) > 0 }
    }

    @Test("a member that opens a stream and never reads: cut off, memory bounded")
    func neverReads() async throws {
        let report = try await attack("never-read", seconds: 6)
        #expect(report["closed"] as? Bool == true, "\(report)")
        #expect(try await eventuallyAudited("http2.stalled"))
    }

    @Test("a member that floods PINGs: GOAWAY ENHANCE_YOUR_CALM too_many_pings at the third, audited")
    func pingFlood() async throws {
        let report = try await attack("ping-flood")
        #expect(report["closed"] as? Bool == true, "\(report)")
        #expect(try await eventuallyAudited("http2.flood"))
        let reason = try federation.sql("ncct", "SELECT detail FROM audit WHERE event = 'http2.flood'").first
        #expect(reason?.contains("too_many_pings") == true, "\(reason ?? "")")
    }

    @Test("4 MiB of empty persons: INVALID_ARGUMENT naming the field; past the byte rate, UNAVAILABLE (retry later)")
    func decodeBomb() async throws {
        let report = try await attack("decode-bomb", count: 8)
        let codes = try #require(report["codes"] as? [String: Int], "\(report)")
        let details = try #require(report["details"] as? [String: String], "\(report)")
        // 64 MiB a minute, at most ~11 MiB at once: the first two are decoded (and refused), the rest not even read.
        #expect(codes == ["INVALID_ARGUMENT": 2, "UNAVAILABLE": 6], "\(report)")
        #expect(
            details["INVALID_ARGUMENT"]?.contains("casebridge.v1.InterventionRequest.persons: too many elements")
                == true
        )
        #expect(details["UNAVAILABLE"]?.contains("embassy-cn sent more than 67108864 bytes in a minute") == true)
        #expect(try await eventuallyAudited("call.malformed"))
        #expect(try await eventuallyAudited("peer.limit"))
    }

    @Test("rapid reset and bytes that are not HTTP/2: the connection is closed and the refusal audited")
    func protocolAbuse() async throws {
        let reset = try await attack("rapid-reset", seconds: 2)
        #expect(reset["closed"] as? Bool == true || reset["goaway"] != nil, "\(reset)")
        let garbage = try await attack("garbage", seconds: 1)
        #expect(garbage["closed"] as? Bool == true, "\(garbage)")
        #expect(try await eventuallyAudited("http2.protocol_error"))
    }

    @Test("one member cannot hold every connection: past its limit it is refused, others connect")
    func connectionHog() async throws {
        let report = try await attack("connection-hog", seconds: 3, count: 20)
        #expect(report["held"] as? Int == 8, "\(report)")
        #expect(report["refused"] as? Int == 12, "\(report)")
        #expect(try await eventuallyAudited("peer.limit"))
    }

    @Test("strangers: thousands of connects cost a few audit rows; idle ones are bounded per address")
    func strangers() async throws {
        let before = try federation.sql("ncct", "SELECT COUNT(*) FROM audit").first.flatMap { Int($0) } ?? 0
        _ = try await attack("strangers", as: nil, seconds: 2, count: 3_000)
        let idle = try await attack("idle-strangers", as: nil, seconds: 3, count: 200)
        #expect(idle["held"] as? Int == 200, "\(idle)")  // accepted by the kernel, then closed by the node
        #expect(try await eventuallyAudited("connection.address_limit"))
        #expect(try await eventuallyAudited("tls.refused"))
        let after = try federation.sql("ncct", "SELECT COUNT(*) FROM audit").first.flatMap { Int($0) } ?? 0
        let submits = try auditCount("request.received")
        #expect(after - before - submits < 20, "\(after - before - submits) audit rows for 3,200 strangers")
    }
}
