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

    @Test("each harness takes every input of its corpus without a crash", arguments: ["decode", "server-session"])
    func replay(target: String) throws {
        let corpus = repositoryRoot.appendingPathComponent("Tests/Fuzz/corpus/\(target)")
        let files = try FileManager.default.contentsOfDirectory(atPath: corpus.path)
        let result = try run(Self.binary, [target, corpus.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "replayed \(files.count) inputs through \(target)\n")
    }
}
