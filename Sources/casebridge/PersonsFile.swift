import ArgumentParser
import CaseBridgeNode
import CaseBridgeProto
import Foundation

/// Reads persons (for a batch request) or outcomes (for an update) from CSV or JSON. Problems name
/// the file, line and column, never the value: values are personal data.
enum PersonsFile {
    static let personColumns = [
        "person_ref", "full_name", "native_name", "other_names", "nationality", "date_of_birth", "sex",
        "document_number", "document_country", "document_withheld", "phone", "languages", "minor", "needs",
        "description",
    ]

    /// Every line is checked before anything is sent, and every bad line is reported at once
    /// (one stderr line each), so a 250-row file needs one round of fixes, not one per error.
    ///
    /// A person without a person_ref gets the first free "P<n>", skipping the refs the file names
    /// and `taken` (the refs a case already has, when persons are added to it).
    static func persons(_ path: String, taken: Set<String> = []) throws -> [Person] {
        let records = try read(path, columns: personColumns, required: ["full_name"])
        var persons: [Person] = []
        var problems: [String] = []
        for (line, record) in records {
            do {
                let person = try self.person(record)
                guard person.personRef.isEmpty || !persons.contains(where: { $0.personRef == person.personRef }) else {
                    throw LineProblem(column: "person_ref", text: "used on an earlier line")
                }
                guard !taken.contains(person.personRef) else {
                    throw LineProblem(column: "person_ref", text: "already in the case")
                }
                persons.append(person)
            } catch let problem as LineProblem {
                problems.append("\(path) line \(line): \(problem.column): \(problem.text)")
            }
        }
        try report(problems, in: path)
        guard !persons.isEmpty else { throw fail("\(path): no persons in the file", code: Exit.badInput) }
        var used = taken.union(persons.map(\.personRef))
        var next = 1
        for i in persons.indices where persons[i].personRef.isEmpty {
            while used.contains("P\(next)") { next += 1 }
            persons[i].personRef = "P\(next)"
            used.insert(persons[i].personRef)
        }
        return persons
    }

    /// What is wrong on one line: the column and the rule, never the value.
    private struct LineProblem: Error {
        let column: String
        let text: String
    }

    private static func person(_ record: [String: String]) throws(LineProblem) -> Person {
        var person = Person()
        person.personRef = record["person_ref"] ?? ""
        person.fullName = record["full_name"] ?? ""
        guard !person.fullName.isEmpty else { throw LineProblem(column: "full_name", text: "is empty") }
        person.nativeName = record["native_name"] ?? ""
        person.otherNames = list(record["other_names"])
        person.nationality = (record["nationality"] ?? "").uppercased()
        person.dateOfBirth = record["date_of_birth"] ?? ""
        if let sex = record["sex"], !sex.isEmpty {
            guard let parsed = Sex(name: sex) else {
                throw LineProblem(column: "sex", text: "must be female, male or other")
            }
            person.sex = parsed
        }
        if let number = record["document_number"], !number.isEmpty {
            var document = TravelDocument()
            document.number = number
            document.issuingCountry = (record["document_country"] ?? "").uppercased()
            guard let withheld = flag(record["document_withheld"]) else {
                throw LineProblem(column: "document_withheld", text: "must be yes or no")
            }
            document.withheld = withheld
            person.travelDocument = document
        }
        person.phone = record["phone"] ?? ""
        person.languages = list(record["languages"])
        guard let minor = flag(record["minor"]) else { throw LineProblem(column: "minor", text: "must be yes or no") }
        person.minor = minor
        person.needs = list(record["needs"])
        person.description = record["description"] ?? ""
        var checked = person
        if checked.personRef.isEmpty { checked.personRef = "P" }  // refs are given after every line is read
        if let (field, text) = Validation.problem(in: checked) { throw LineProblem(column: field, text: text) }
        return person
    }

    /// Prints every problem (one line each) and fails, or does nothing when there are none.
    private static func report(_ problems: [String], in path: String) throws {
        guard !problems.isEmpty else { return }
        for problem in problems.dropLast() { _ = fail(problem) }
        let last =
            problems.count == 1
            ? problems[0]
            : "\(problems.last!)\ncasebridge: \(path): \(problems.count) lines to fix; nothing was sent"
        throw fail(last, code: Exit.badInput)
    }

    static func outcomes(_ path: String) throws -> [PersonOutcome] {
        var outcomes: [PersonOutcome] = []
        var problems: [String] = []
        for (line, record) in try read(
            path,
            columns: ["person_ref", "status", "note"],
            required: ["person_ref", "status"]
        ) {
            var outcome = PersonOutcome()
            outcome.personRef = record["person_ref"] ?? ""
            guard let status = PersonStatus(name: record["status"] ?? ""), status != .unspecified else {
                problems.append(
                    "\(path) line \(line): status: must be one of \(PersonStatus.choices.joined(separator: ", "))"
                )
                continue
            }
            outcome.status = status
            outcome.note = record["note"] ?? ""
            outcomes.append(outcome)
        }
        try report(problems, in: path)
        return outcomes
    }

    /// Records with their line numbers (the header is line 1; JSON objects count from 1).
    /// `path` "-" is standard input: persons typed or piped in, never in the command's arguments.
    private static func read(_ path: String, columns: [String], required: [String]) throws -> [(Int, [String: String])]
    {
        let contents =
            path == "-"
            ? FileHandle.standardInput.readDataToEndOfFile()
            : FileManager.default.contents(atPath: path)
        guard let data = contents else { throw fail("cannot read \(path)", code: Exit.badInput) }
        guard let text = String(data: data, encoding: .utf8) else {
            throw fail("\(path): not UTF-8 text", code: Exit.badInput)
        }
        if path.lowercased().hasSuffix(".json") {
            guard let array = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] else {
                throw fail("\(path): must be a JSON list of objects", code: Exit.badInput)
            }
            return try array.enumerated().map { index, object in
                if let unknown = object.keys.first(where: { !columns.contains($0) }) {
                    throw fail(
                        "\(path) item \(index + 1): unknown field \(unknown) "
                            + "(known: \(columns.joined(separator: ", ")))",
                        code: Exit.badInput
                    )
                }
                return (
                    index + 1,
                    object.mapValues { value in
                        if let list = value as? [Any] { return list.map { "\($0)" }.joined(separator: ";") }
                        if let flag = value as? Bool { return flag ? "yes" : "no" }
                        return "\(value)"
                    }
                )
            }
        }
        var rows = try CSV.parse(text, path: path)
        guard !rows.isEmpty else { throw fail("\(path): empty file", code: Exit.badInput) }
        let header = rows.removeFirst().map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        if let unknown = header.first(where: { !columns.contains($0) }) {
            throw fail(
                "\(path) line 1: unknown column \(unknown) (known: \(columns.joined(separator: ", ")))",
                code: Exit.badInput
            )
        }
        if let missing = required.first(where: { !header.contains($0) }) {
            throw fail("\(path) line 1: missing column \(missing)", code: Exit.badInput)
        }
        return try rows.enumerated().compactMap { index, row in
            let line = index + 2
            if row.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) { return nil }
            guard row.count == header.count else {
                throw fail(
                    "\(path) line \(line): has \(row.count) fields, the header has \(header.count)",
                    code: Exit.badInput
                )
            }
            return (
                line, Dictionary(uniqueKeysWithValues: zip(header, row.map { $0.trimmingCharacters(in: .whitespaces) }))
            )
        }
    }

    private static func list(_ value: String?) -> [String] {
        (value ?? "").split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    private static func flag(_ value: String?) -> Bool? {
        switch (value ?? "").lowercased() {
        case "", "no", "false", "0", "n": false
        case "yes", "true", "1", "y": true
        default: nil
        }
    }
}

/// RFC 4180 CSV: quoted fields may hold commas, newlines and doubled quotes.
enum CSV {
    static func parse(_ text: String, path: String) throws -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = ""
        var quoted = false, line = 1
        var iterator = Array(text.unicodeScalars).makeIterator()
        var pending: Unicode.Scalar? = nil
        func next() -> Unicode.Scalar? {
            if let p = pending { pending = nil; return p }
            return iterator.next()
        }
        while let c = next() {
            if quoted {
                if c == "\"" {
                    if let after = next() {
                        if after == "\"" { field.unicodeScalars.append("\"") } else { quoted = false; pending = after }
                    } else {
                        quoted = false
                    }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
                continue
            }
            switch c {
            case "\"" where field.isEmpty: quoted = true
            case ",": row.append(field); field = ""
            case "\r": break
            case "\n":
                row.append(field); rows.append(row); row = []; field = ""; line += 1
            default: field.unicodeScalars.append(c)
            }
        }
        if quoted { throw fail("\(path) line \(line): a quoted field is not closed", code: Exit.badInput) }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        return rows
    }
}
