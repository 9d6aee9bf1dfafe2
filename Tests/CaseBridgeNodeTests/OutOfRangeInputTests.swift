import CaseBridgeProto
import CaseBridgeRPC
import Foundation
import Testing
import TestSupport

/// Numbers from the wire or the command line that no stored id can have: each is refused with a
/// precise answer, and the node keeps serving (it used to trap and stop).
@Suite("Out-of-range numbers", .serialized)
struct OutOfRangeInputTests {
    @Test("WatchCases, Watch and MarkRead past Int64.max: INVALID_ARGUMENT, the node stays up")
    func wireNumbers() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        for node in federation.nodes { try await federation.start(node) }
        let ncct = federation.console("ncct")
        let asEmbassy = try federation.peerChannel(to: "ncct", as: "embassy-id")
        defer { [ncct, asEmbassy].forEach { $0.close() } }

        for after in [UInt64(1) << 63, UInt64.max] {
            var watch = WatchCasesRequest()
            watch.afterEventID = after
            for channel in [asEmbassy, ncct] {
                let method = channel === asEmbassy ? CaseExchange.watchCases : Console.watch
                let error = await #expect(throws: RPCError.self) {
                    for try await _ in channel.streaming(method, [watch], timeout: .seconds(10)) {}
                }
                #expect(error?.code == .invalidArgument)
                #expect(error?.message == "after_event_id: must be at most 9223372036854775807")
            }
        }
        var mark = MarkReadRequest()
        mark.entryIDs = [1, UInt64.max]
        let error = await #expect(throws: RPCError.self) { try await ncct.unary(Console.markRead, mark) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message == "entry_ids[1]: must be at most 9223372036854775807")

        // Still serving: a peer's submit and the console's status.
        var request = Make.request(persons: 1)
        request.originNode = "embassy-id"
        request.requestID = UUID().uuidString.lowercased()
        _ = try await asEmbassy.unary(CaseExchange.submitRequest, request)
        #expect(try await ncct.unary(Console.getStatus, StatusRequest()).nodeID == "ncct")
        federation.stopAll()
    }

    @Test("the command line refuses the same numbers with one line and exit 2")
    func commandLineNumbers() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        try await federation.start("ncct")
        let config = ["--config", federation.configPath("ncct").path]
        for (arguments, fragment) in [
            (["watch", "--after", "9223372036854775808"], "--after must be at most 9223372036854775807"),
            (["inbox", "--mark-read", "18446744073709551615"], "--mark-read must be at most 9223372036854775807"),
            (["inbox", "--limit", "5000000000"], "--limit must be from 1 to 10000"),
            (["case", "list", "--limit", "0"], "--limit must be from 1 to 500"),
            (["case", "list", "--page", "0"], "--page must be 1 or more"),
        ] {
            let result = try run(casebridgeBinary, arguments + config)
            #expect(result.status == 2, "\(arguments): \(result.stderr)")
            #expect(result.stderr == "casebridge: \(fragment)\n", "\(arguments)")
        }
        #expect(try run(casebridgeBinary, ["status"] + config, environment: federation.cliEnvironment()).status == 0)
        federation.stopAll()
    }
}
