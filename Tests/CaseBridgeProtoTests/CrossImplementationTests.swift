import Foundation
import Testing
import TestSupport
import CaseBridgeProto

/// Our codec and the official Python protobuf runtime agree, in both directions.
@Suite("Agreement with the official Python protobuf runtime")
struct CrossImplementationTests {
    @Test("Python decodes what Swift encoded, and Swift decodes what Python encoded")
    func bothDirections() throws {
        let folder = try makeTemporaryFolder("codec")
        defer { try? FileManager.default.removeItem(at: folder) }
        for sample in Samples.all {
            try Data(sample.encode()).write(to: folder.appendingPathComponent("\(sample.name).swift.bin"))
        }
        let peer = repositoryRoot.appendingPathComponent("Tests/Peers/codec_peer.py").path
        let check = try run("python3", [peer, "check", folder.path])
        #expect(check.status == 0, "Python could not read what Swift wrote:\n\(check.stdout)\(check.stderr)")
        #expect(check.stdout.split(separator: "\n").filter { $0.hasPrefix("ok ") }.count == Samples.all.count)

        let write = try run("python3", [peer, "write", folder.path])
        try #require(write.status == 0, "\(write.stderr)")
        for sample in Samples.all {
            let bytes = try [UInt8](Data(contentsOf: folder.appendingPathComponent("\(sample.name).py.bin")))
            #expect(try sample.matches(bytes), "Swift read Python's \(sample.name) differently")
        }
    }
}

/// The checked-in generated code is what proto/ gives, and the check notices when it is not.
@Suite("Generated code freshness")
struct GeneratedCodeTests {
    @Test("checked-in code matches proto/, and an edited .proto is caught")
    func freshness() throws {
        let copy = try makeTemporaryFolder("fresh")
        defer { try? FileManager.default.removeItem(at: copy) }
        for path in ["proto", "scripts", "Sources/CCaseBridgeProto", "Sources/CaseBridgeProto/Generated"] {
            let destination = copy.appendingPathComponent(path)
            try FileManager.default.createDirectory(
                at: destination.deletingLastPathComponent(),
                withIntermediateDirectories: true
            )
            try FileManager.default.copyItem(at: repositoryRoot.appendingPathComponent(path), to: destination)
        }
        let script = copy.appendingPathComponent("scripts/generate-proto").path
        let clean = try run(script, ["--check"])
        #expect(clean.status == 0, "\(clean.stderr)")

        let proto = copy.appendingPathComponent("proto/casebridge/v1/request.proto")
        let edited = try String(contentsOf: proto, encoding: .utf8)
            .replacingOccurrences(
                of: "  string contact = 13;",
                with: "  string contact = 13;\n  string added_later = 99;"
            )
        try edited.write(to: proto, atomically: true, encoding: .utf8)
        let stale = try run(script, ["--check"])
        #expect(stale.status != 0)
        #expect(stale.stderr.contains("stale"))
    }
}
