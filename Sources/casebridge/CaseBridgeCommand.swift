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
