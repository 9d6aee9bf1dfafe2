import ArgumentParser
import CaseBridgeTLS
import CaseBridgeNode
import CaseBridgeProto
import Foundation

struct AttachCommand: ChangeCommand {
    static let configuration = CommandConfiguration(
        commandName: "attach",
        abstract: "Sends a photo or scanned document (JPEG, PNG or PDF, up to 2 MiB) with a case.",
        discussion: """
            The file goes to the other agency with the case, sealed at rest like the case's other \
            personal data. Its type is read from the file itself; anything but JPEG, PNG or PDF is \
            refused. At most 20 per case.

            Examples:
              casebridge attach IDN-2026-0412 passport.jpg --person P3 --caption "passport"
              casebridge attachment IDN-2026-0412 UPDATE_ID --to copy.jpg
            """
    )
    @OptionGroup var node: NodeOptions
    @Argument(help: "The case: its id, a unique start of it, or its reference.") var caseID: String
    @Argument(help: "The file.") var file: String
    @Option(help: "What it shows.") var caption = ""
    @Option(help: "The person it is about (a person ref of the case).") var person = ""

    func change() throws -> CaseUpdate.Change {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw fail("cannot read \(file)", code: Exit.badInput)
        }
        let bytes = [UInt8](data)
        guard bytes.count <= AttachmentRules.maxBytes else {
            throw fail("\(file) is \(bytes.count) bytes; at most 2 MiB (2,097,152 bytes)", code: Exit.badInput)
        }
        guard let type = AttachmentRules.sniff(bytes) else {
            throw fail("\(file) is not a JPEG, PNG or PDF file; only those can be sent", code: Exit.badInput)
        }
        var attachment = Attachment()
        attachment.contentType = type
        attachment.fileName = URL(fileURLWithPath: file).lastPathComponent
        attachment.sha256 = Digest.sha256Hex(bytes)
        attachment.data = bytes
        attachment.caption = caption
        attachment.personRef = person
        return .attachment(attachment)
    }
}

struct AttachmentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attachment",
        abstract: "Saves one attachment of a case to a file (recorded in the access log).",
        discussion: "Example:\n  casebridge attachment IDN-2026-0412 UPDATE_ID --to passport.jpg"
    )
    @OptionGroup var node: NodeOptions
    @Argument(help: "The case: its id, a unique start of it, or its reference.") var caseID: String
    @Argument(help: "The update that carried it (`case show` lists them).") var updateID: String
    @Option(help: "Where to save it (a new file).") var to: String

    func run() async throws {
        let console = try node.console()
        var request = GetAttachmentRequest()
        request.caseID = try await console.resolveCase(caseID)
        request.updateID = updateID
        let attachment = try await console.call(Console.getAttachment, request)
        // Owner-only, as every file holding personal data.
        let written = FileManager.default.createFile(
            atPath: to,
            contents: Data(attachment.data),
            attributes: [.posixPermissions: 0o600]
        )
        guard written else { throw fail("cannot write \(to)", code: Exit.badInput) }
        print("Saved \(attachment.fileName) (\(attachment.contentType), \(attachment.data.count) bytes) to \(to)")
    }
}
