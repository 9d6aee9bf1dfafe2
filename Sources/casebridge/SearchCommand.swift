import ArgumentParser
import CaseBridgeProto
import Foundation

struct SearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Finds persons by name, date of birth, document number, phone or your reference.",
        discussion: """
            It asks what to search for (or reads it from standard input): a search names a person, \
            so it is never taken from arguments, where the process list and the shell history \
            would keep it; nor is it logged. Names match word by word, in any order, with or \
            without diacritics ("dao thi nguyen" finds Nguyễn Thị Đào); numbers match exactly.

            Example:
              casebridge search
              Search for: siti rahma
            """
    )
    @OptionGroup var node: NodeOptions
    @Argument(help: .hidden) var query: [String] = []
    @Option(help: "At most this many hits.") var limit: Int = 50

    func run() async throws {
        guard query.isEmpty else {
            throw fail(
                "a search names a person: type it when asked (run `casebridge search` alone), or pipe it in; "
                    + "arguments would keep it in the process list and the shell history",
                code: Exit.badInput
            )
        }
        if isatty(STDIN_FILENO) != 0 { FileHandle.standardError.write(Data("Search for: ".utf8)) }
        var request = SearchRequest()
        request.query = (readLine() ?? "").trimmingCharacters(in: .whitespaces)
        guard !request.query.isEmpty else { throw fail("nothing to search for", code: Exit.badInput) }
        request.limit = UInt32(try listLimit(limit))
        let console = try node.console()
        let hits = try await console.stream(Console.search, request)
        if Output.printedAsJSONOrEmpty(hits, json: node.json, empty: "No one found.") { return }
        Output.table(
            ["CASE", "PERSON", "NAME", "BORN", "PERSON NOW", "CASE NOW", "REF"],
            hits.map { hit in
                [
                    Output.shortID(hit.summary?.caseID ?? ""), hit.personRef, hit.fullName, hit.dateOfBirth,
                    hit.status.description,
                    hit.summary?.status.description ?? "-", hit.summary?.originReference ?? "",
                ]
            },
            flexible: ["NAME"]
        )
    }
}
