import ArgumentParser
import CaseBridgeNode
import CaseBridgeProto
import Foundation

/// Runs the command. A mistake in the flags is one line on stderr starting "casebridge:" with
/// exit 2, like every other bad input, instead of the parser's own "Error:" and exit 64.
@main
enum CaseBridgeMain {
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            var command = try CaseBridgeCommand.parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            guard CaseBridgeCommand.exitCode(for: error) == .validationFailure else {
                CaseBridgeCommand.exit(withError: error)
            }
            // Point at the help of the deepest command the words name.
            var command: ParsableCommand.Type = CaseBridgeCommand.self
            var path = ["casebridge"]
            for word in arguments.prefix(while: { !$0.hasPrefix("-") }) {
                guard let sub = command.configuration.subcommands.first(where: { $0._commandName == word }) else {
                    break
                }
                path.append(word)
                command = sub
            }
            let help = (path + ["--help"]).joined(separator: " ")
            let message =
                CaseBridgeCommand.message(for: error).split(separator: "\n").first.map(String.init) ?? "bad usage"
            CaseBridgeCommand.exit(withError: fail("\(message) (see `\(help)`)", code: Exit.badInput))
        }
    }
}

struct CaseBridgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "casebridge",
        abstract: "Moves rescue and repatriation requests between embassies and NCCT.",
        discussion: """
            Each agency runs one node. Staff use the commands below against their own node, which \
            delivers to the other agencies' nodes over gRPC with mutual TLS. New here? Run \
            `casebridge demo`.

            Example: casebridge node run --config nodes/ncct.json
            """,
        subcommands: [
            SubmitCommand.self, InboxCommand.self, CaseCommand.self, AckCommand.self, UpdateCommand.self,
            NoteCommand.self,
            RequestInfoCommand.self, ProvideInfoCommand.self, WithdrawCommand.self, WatchCommand.self,
            SearchCommand.self, DemoCommand.self, StatusCommand.self, AuditCommand.self, RetentionCommand.self,
            CheckPeerCommand.self,
            ConformanceCommand.self, BackupCommand.self, RestoreCommand.self, DeliverCommand.self,
            NodeCommand.self, CertsCommand.self,
            ContractCommand.self, LoginCommand.self, LogoutCommand.self, WhoAmICommand.self, EnrolCommand.self,
            StaffCommand.self, AccessLogCommand.self, DoctorCommand.self, OverdueCommand.self, ReportCommand.self,
            DuplicatesCommand.self, AttachCommand.self, AttachmentCommand.self, VerifyProofCommand.self,
        ]
    )
}

struct ContractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "contract",
        abstract: "Lists the services and methods of the wire contract in proto/, or prints its lifecycle tables.",
        discussion: """
            Examples:
              casebridge contract
              casebridge contract --lifecycle
              casebridge contract --lifecycle --proto

            --lifecycle prints the tables as README.md has them; with --proto, as the comments in \
            proto/casebridge/v1/case.proto.
            """
    )
    @OptionGroup var output: JSONOption
    @Flag(help: "Print the case and person transition tables and the rules of each change.") var lifecycle = false
    @Flag(help: "With --lifecycle: as proto comments.") var proto = false

    func run() {
        if lifecycle {
            print(Lifecycle.contractText(asProtoComment: proto), terminator: "")
            return
        }
        let methods = ProtoCodec.contractMethods
        if output.json {
            for method in methods {
                Output.json([
                    "service": method.service, "method": method.name, "input": method.input, "output": method.output,
                ])
            }
            return
        }
        print(
            "CaseBridge wire contract (proto/): \(Set(methods.map(\.service)).count) services, \(methods.count) methods"
        )
        var current = ""
        for method in methods {
            if method.service != current {
                current = method.service
                print("\n\(current)")
            }
            print("  \(method.name)(\(method.input)) -> \(method.output)")
        }
    }
}

/// Prints one readable line for a failure and exits non-zero: 2 for bad input or configuration,
/// 1 for everything else.
func fail(_ message: String, code: Int32 = 1) -> ExitCode {
    FileHandle.standardError.write(Data("casebridge: \(message)\n".utf8))
    return ExitCode(code)
}

/// A value of one of the contract's enums as staff type it ("in_progress", "in-progress"), or
/// exit 2 with the values there are.
func choice<E: ProtoEnum>(_ text: String, for flag: String, _ type: E.Type = E.self) throws -> E {
    guard let value = E(name: text), value.rawValue != 0 else {
        // What was typed is not repeated: an error line may be seen, logged or pasted by others.
        throw fail("\(flag) must be one of: \(E.choices.joined(separator: ", "))", code: Exit.badInput)
    }
    return value
}

/// A `--limit` as the wire carries it: 1 to 10,000 (what a node returns at most), else exit 2.
func listLimit(_ limit: Int) throws -> UInt32 {
    guard (1...10_000).contains(limit) else { throw fail("--limit must be from 1 to 10000", code: Exit.badInput) }
    return UInt32(limit)
}

/// An event or entry number as the node stores it (signed 64-bit), else exit 2.
func storedNumber(_ value: UInt64, flag: String) throws -> UInt64 {
    guard value <= UInt64(Int64.max) else { throw fail("\(flag) must be at most \(Int64.max)", code: Exit.badInput) }
    return value
}
