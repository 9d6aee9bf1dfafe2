import Foundation
import Testing
import TestSupport

/// Every command's --help, as a person reads it in an 80-column terminal.
@Suite("Help text at 80 columns")
struct HelpTextTests {
    /// Every command path, found by walking the SUBCOMMANDS sections from the top.
    func commandPaths() throws -> [[String]] {
        var found: [[String]] = []
        var pending: [[String]] = [[]]
        while let path = pending.popLast() {
            found.append(path)
            let help = try run(casebridgeBinary, path + ["--help"]).stdout
            guard let after = help.components(separatedBy: "SUBCOMMANDS:\n").dropFirst().first,
                let section = after.components(separatedBy: "\n\n").first
            else { continue }
            for line in section.split(separator: "\n") where line.hasPrefix("  ") && !line.hasPrefix("   ") {
                let name = line.split(separator: " ").first.map(String.init) ?? ""
                if !name.isEmpty, name != "help" { pending.append(path + [name]) }
            }
        }
        return found
    }

    /// Lines of the overview and discussion that were broken where no 80-column wrap would break
    /// (the parser keeps lines under 80): a prose line cut short before a lower-case word that
    /// would have fitted, an indented example that wrapped onto an unindented line, or a line too wide.
    static func brokenLines(_ help: String) -> [String] {
        let text = help.components(separatedBy: "\nUSAGE:").first ?? help
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var broken: [String] = []
        for (line, next) in zip(lines, lines.dropFirst()) where !line.isEmpty && !next.isEmpty {
            let nextWord = next.split(separator: " ").first.map(String.init) ?? ""
            let fits = line.count + 1 + nextWord.count < 80
            let continuesProse = next.first.map { $0.isLowercase || $0.isNumber } ?? false
            if line.count >= 80 || (fits && continuesProse && !next.hasPrefix(" "))
                || (line.hasPrefix("  ") && !next.hasPrefix(" "))
            {
                broken.append(line)
            }
        }
        return broken
    }

    @Test("no command's help is broken mid-sentence or wider than 80 columns")
    func everyCommand() throws {
        let paths = try commandPaths()
        #expect(paths.count > 20, "found only \(paths)")
        for path in paths {
            let help = try run(casebridgeBinary, path + ["--help"], environment: ["COLUMNS": "80"]).stdout
            #expect(Self.brokenLines(help) == [], "casebridge \(path.joined(separator: " ")) --help")
        }
    }

    @Test("the checker itself finds a hard break and a wrapped example")
    func checkerFindsBreaks() {
        #expect(
            Self.brokenLines("OVERVIEW: x\n\nThe identity comes from the\ndirectory entry.\n") == [
                "The identity comes from the"
            ]
        )
        #expect(
            Self.brokenLines("Examples:\n  casebridge submit --name x\n--phone +62 \\\n") == [
                "  casebridge submit --name x"
            ]
        )
        #expect(Self.brokenLines("Statuses: a, b.\nSteps: c, d.\n") == [])
    }
}
