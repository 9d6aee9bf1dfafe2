import ArgumentParser
import CaseBridgeProto

@main
struct CaseBridgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "casebridge",
        abstract: "Moves rescue and repatriation requests between embassies and NCCT.",
        subcommands: [ContractCommand.self]
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
