import CaseBridgeNode
import CaseBridgeTLS
import CaseBridgeProto
import CaseBridgeRPC
import Foundation
import Testing
import TestSupport

/// Photos and scanned documents travel with a case: JPEG, PNG and PDF only, within the limits,
/// sealed like personal data, each look recorded, never shown to operators.
@Suite("Attachments", .serialized)
struct AttachmentTests {
    static let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + Array("IHDR photo bytes".utf8)
    static let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0] + Array("JFIF scan bytes".utf8)
    static let pdf: [UInt8] = Array("%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n".utf8)
    static let gif: [UInt8] = Array("GIF89a not allowed".utf8)

    static func attachment(_ data: [UInt8], type: String, name: String, person: String = "") -> CaseUpdate.Change {
        var attachment = Attachment()
        attachment.contentType = type
        attachment.fileName = name
        attachment.sha256 = Digest.sha256Hex(data)
        attachment.data = data
        attachment.personRef = person
        attachment.caption = "about \(name)"
        return .attachment(attachment)
    }

    @Test("each allowed type goes to NCCT and back whole; others are refused, and so is the 21st")
    func roundTrips() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        for node in federation.nodes { try await federation.start(node) }
        let embassy = federation.console("embassy-id"), ncct = federation.console("ncct")
        let ncctOperator = federation.console("ncct", token: federation.operators["ncct"]!.token)
        defer { [embassy, ncct, ncctOperator].forEach { $0.close() } }
        let caseID = try await embassy.unary(Console.submit, Make.request(persons: 2)).caseID
        var sent: [String: [UInt8]] = [:]
        for (data, type, name) in [
            (Self.png, "image/png", "photo.png"), (Self.jpeg, "image/jpeg", "passport.jpg"),
            (Self.pdf, "application/pdf", "letter.pdf"),
        ] {
            let receipt = try await embassy.unary(
                Console.applyChange,
                Make.update(caseID, Self.attachment(data, type: type, name: name, person: "P1"))
            )
            sent[receipt.updateID] = data
        }
        // At NCCT: the case lists them without their bytes; each comes whole on request.
        var lookup = GetCaseRequest()
        lookup.caseID = caseID
        var atNCCT = Case()
        #expect(
            try await federation.eventually {
                atNCCT = try await ncct.unary(Console.getCase, lookup)
                return atNCCT.history.count == 3
            }
        )
        for update in atNCCT.history {
            guard case .attachment(let listed)? = update.change else {
                Issue.record("not an attachment: \(update)")
                continue
            }
            #expect(listed.data.isEmpty && listed.personRef == "P1" && !listed.fileName.isEmpty)
            var get = GetAttachmentRequest()
            get.caseID = caseID
            get.updateID = update.updateID
            let whole = try await ncct.unary(Console.getAttachment, get)
            #expect(whole.data == sent[update.updateID] && whole.sha256 == Digest.sha256Hex(whole.data))
            // Operators see that there is a file, never the file or its name.
            await #expect(throws: RPCError.self) { try await ncctOperator.unary(Console.getAttachment, get) }
        }
        let shown = try await ncctOperator.unary(Console.getCase, lookup).history.first
        if case .attachment(let withheld)? = shown?.change {
            #expect(withheld.fileName == "(withheld)" && withheld.data.isEmpty)
        } else {
            Issue.record("the operator's view lost the attachment's place")
        }
        #expect(try federation.sql("ncct", "SELECT COUNT(*) FROM access_log WHERE what = 'attachment view'") == ["3"])
        // The files are sealed at rest: no file's bytes in clear in any node's folder.
        #expect(plainTextHits(in: federation.folder, ["IHDR photo bytes", "JFIF scan bytes"]).isEmpty)

        func refusal(_ change: CaseUpdate.Change) async throws -> RPCError? {
            do {
                _ = try await embassy.unary(Console.applyChange, Make.update(caseID, change))
                return nil
            } catch let error as RPCError { return error }
        }
        let disguised = try await refusal(Self.attachment(Self.gif, type: "image/png", name: "cat.png"))
        #expect(disguised?.code == .invalidArgument && disguised?.message.contains("not a JPEG, PNG or PDF") == true)
        let mislabelled = try await refusal(Self.attachment(Self.pdf, type: "image/jpeg", name: "scan.jpg"))
        #expect(mislabelled?.message.contains("application/pdf, not the image/jpeg") == true)
        var tampered = Attachment()
        tampered.contentType = "image/png"
        tampered.fileName = "photo.png"
        tampered.data = Self.png
        tampered.sha256 = String(repeating: "0", count: 64)
        #expect(try await refusal(.attachment(tampered))?.message.contains("attachment.sha256") == true)
        let big = [UInt8](Self.png) + [UInt8](repeating: 7, count: AttachmentRules.maxBytes)
        #expect(try await refusal(Self.attachment(big, type: "image/png", name: "huge.png"))?.code == .invalidArgument)
        let stranger = try await refusal(Self.attachment(Self.png, type: "image/png", name: "x.png", person: "P9"))
        #expect(stranger?.message.contains("no person P9") == true)
        // Twenty per case: 3 sent, 17 more fit, the 21st does not.
        for index in 0..<17 {
            _ = try await embassy.unary(
                Console.applyChange,
                Make.update(caseID, Self.attachment(Self.png, type: "image/png", name: "more-\(index).png"))
            )
        }
        let full = try await refusal(Self.attachment(Self.png, type: "image/png", name: "one-too-many.png"))
        #expect(full?.code == .failedPrecondition && full?.message.contains("20 attachments") == true)

        // From the command line: sent from a file, saved to a file.
        let folder = try makeTemporaryFolder("attach")
        defer { try? FileManager.default.removeItem(at: folder) }
        let other = try await embassy.unary(Console.submit, Make.request(persons: 1)).caseID
        let source = folder.appendingPathComponent("scan.pdf")
        try Data(Self.pdf).write(to: source)
        let attached = try federation.cli(["attach", other, source.path, "--caption", "letter"], node: "embassy-id")
        #expect(attached.status == 0, "\(attached.stderr)")
        let text = folder.appendingPathComponent("notes.txt")
        try Data("plain text".utf8).write(to: text)
        let refused = try federation.cli(["attach", other, text.path], node: "embassy-id")
        #expect(refused.status == 2 && refused.stderr.contains("not a JPEG, PNG or PDF"), "\(refused.stderr)")
        let shownAtEmbassy = try federation.cli(["case", "show", other], node: "embassy-id")
        let updateID = try #require(
            shownAtEmbassy.stdout.split(separator: "\n").first { $0.contains("save it:") }?.split(separator: " ")
                .dropLast(2).last.map(String.init),
            "\(shownAtEmbassy.stdout)"
        )
        let copy = folder.appendingPathComponent("copy.pdf")
        let saved = try federation.cli(["attachment", other, updateID, "--to", copy.path], node: "embassy-id")
        #expect(saved.status == 0 && (try? Data(contentsOf: copy)) == Data(Self.pdf), "\(saved.stderr)")
        federation.stopAll()
    }
}
