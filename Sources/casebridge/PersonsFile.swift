import ArgumentParser
import CaseBridgeNode
import CaseBridgeProto
import Foundation

/// Reads persons (for a batch request) or outcomes (for an update) from a CSV or JSON file, with
/// the node's table rules (``PersonsTable``). Problems name the file, line and column, never the value.
enum PersonsFile {
    /// Every line is checked before anything is sent, and every bad line is reported at once
    /// (one stderr line each), so a 250-row file needs one round of fixes, not one per error.
    static func persons(_ path: String, taken: Set<String> = []) throws -> [Person] {
        let records = try read(path, columns: PersonsTable.personColumns, required: ["full_name"])
        let read = PersonsTable.persons(records, taken: taken)
        try report(read.problems, in: path)
        return read.persons
    }

    static func outcomes(_ path: String) throws -> [PersonOutcome] {
        let records = try read(path, columns: PersonsTable.outcomeColumns, required: ["person_ref", "status"])
        let read = PersonsTable.outcomes(records)
        try report(read.problems, in: path)
        return read.outcomes
    }

    /// Prints every problem (one line each) and fails, or does nothing when there are none.
    private static func report(_ problems: [PersonsTable.Problem], in path: String) throws {
        guard !problems.isEmpty else { return }
        let lines = problems.map { $0.line == 0 ? "\(path): \($0)" : "\(path) \($0)" }
        for line in lines.dropLast() { _ = fail(line) }
        let last =
            lines.count == 1
            ? lines[0] : "\(lines.last!)\ncasebridge: \(path): \(lines.count) lines to fix; nothing was sent"
        throw fail(last, code: Exit.badInput)
    }

    /// Records with their line numbers (the header is line 1; JSON objects count from 1).
    /// `path` "-" is standard input: persons typed or piped in, never in the command's arguments.
    private static func read(_ path: String, columns: [String], required: [String]) throws -> [PersonsTable.Record] {
        let contents =
            path == "-"
            ? FileHandle.standardInput.readDataToEndOfFile()
            : FileManager.default.contents(atPath: path)
        guard let data = contents else { throw fail("cannot read \(path)", code: Exit.badInput) }
        guard let text = String(data: data, encoding: .utf8) else {
            throw fail("\(path): not UTF-8 text", code: Exit.badInput)
        }
        guard path.lowercased().hasSuffix(".json") else {
            let (records, problems) = PersonsTable.records(csv: text, columns: columns, required: required)
            try report(problems, in: path)
            return records
        }
        guard let array = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] else {
            throw fail("\(path): must be a JSON list of objects", code: Exit.badInput)
        }
        return try array.enumerated().map { index, object in
            if let unknown = object.keys.first(where: { !columns.contains($0) }) {
                throw fail(
                    "\(path) item \(index + 1): unknown field \(unknown) (known: \(columns.joined(separator: ", ")))",
                    code: Exit.badInput
                )
            }
            let fields = object.mapValues { value in
                if let list = value as? [Any] { return list.map { "\($0)" }.joined(separator: ";") }
                if let flag = value as? Bool { return flag ? "yes" : "no" }
                return "\(value)"
            }
            return PersonsTable.Record(line: index + 1, fields: fields)
        }
    }
}
