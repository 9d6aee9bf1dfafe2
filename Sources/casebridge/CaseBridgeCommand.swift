import ArgumentParser
import CaseBridgeProto
import Foundation

@main
struct CaseBridgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "casebridge",
        abstract: "Moves rescue and repatriation requests between embassies and NCCT.",
        discussion: """
            Each agency runs one node. Staff use the commands below against their own node, which delivers to the other agencies' nodes over gRPC with mutual TLS. New here? Run `casebridge demo`.

            Example: casebridge node run --config nodes/ncct.json
            """,
        subcommands: [
            SubmitCommand.self, InboxCommand.self, CaseCommand.self, AckCommand.self, UpdateCommand.self, NoteCommand.self,
            RequestInfoCommand.self, ProvideInfoCommand.self, WithdrawCommand.self, WatchCommand.self,
            DemoCommand.self, StatusCommand.self, AuditCommand.self, CheckPeerCommand.self, NodeCommand.self, CertsCommand.self,
            ContractCommand.self,
        ]
    )
}

struct ContractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "contract",
        abstract: "Lists the services and methods of the wire contract in proto/.",
        discussion: "Example: casebridge contract"
    )

    func run() {
        let methods = ProtoCodec.contractMethods
        print("CaseBridge wire contract (proto/): \(Set(methods.map(\.service)).count) services, \(methods.count) methods")
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
