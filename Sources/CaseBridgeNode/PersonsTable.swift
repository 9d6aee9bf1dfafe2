import Foundation
import CaseBridgeProto

/// Persons (for a batch request) and outcomes (for an update) read from a table: CSV from the
/// command line or the web console, or JSON objects the command line turns into the same records.
/// Every line is checked before anything is sent and every bad line is reported at once, so a
/// 250-row file needs one round of fixes. Problems name the line and column, never the value:
/// values are personal data.
public enum PersonsTable {
    public static let personColumns = [
        "person_ref", "full_name", "native_name", "other_names", "nationality", "date_of_birth", "sex",
        "document_number", "document_country", "document_withheld", "phone", "languages", "minor", "needs",
        "description",
    ]
    public static let outcomeColumns = ["person_ref", "status", "note"]

    /// What is wrong on one line: the column (empty for the line as a whole) and the rule. Line 0
    /// is the file as a whole (empty, too long, no persons in it).
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public let line: Int
        public let column: String
        public let text: String

        public var description: String {
            line == 0 ? text : "line \(line): " + (column.isEmpty ? text : "\(column): \(text)")
        }
    }

    /// One row: its line number (the header is line 1; JSON objects count from 1) and its fields.
    public struct Record: Sendable {
        public let line: Int
        public let fields: [String: String]
        public init(line: Int, fields: [String: String]) {
            self.line = line
            self.fields = fields
        }
    }

    /// What the console's ReadTable call answers: the persons or outcomes, or every problem.
    public static func read(_ request: ReadTableRequest) -> TableReading {
        var reading = TableReading()
        let outcomes = request.kind == .outcomes
        let columns = outcomes ? outcomeColumns : personColumns
        let required = outcomes ? ["person_ref", "status"] : ["full_name"]
        var (records, problems) = self.records(csv: request.csv, columns: columns, required: required)
        if problems.isEmpty {
            if outcomes {
                let read = self.outcomes(records)
                reading.outcomes = read.outcomes
                problems = read.problems
            } else {
                let read = persons(records, taken: Set(request.takenRefs))
                reading.persons = read.persons
                problems = read.problems
            }
        }
        reading.lines = UInt32(clamping: records.count)
        reading.problems = problems.map { problem in
            var p = TableProblem()
            p.line = UInt32(clamping: problem.line)
            p.column = problem.column
            p.problem = problem.text
            return p
        }
        if !problems.isEmpty {
            reading.persons = []
            reading.outcomes = []
        }
        return reading
    }

    /// CSV text to records, with the problems of its shape (columns, quotes, field counts).
    public static func records(csv text: String, columns: [String], required: [String]) -> ([Record], [Problem]) {
        var rows: [[String]]
        do {
            rows = try CSV.parse(text)
        } catch {
            return ([], [error])
        }
        guard !rows.isEmpty else { return ([], [Problem(line: 0, column: "", text: "the file is empty")]) }
        let header = rows.removeFirst().map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        if let unknown = header.first(where: { !columns.contains($0) }) {
            let known = columns.joined(separator: ", ")
            return ([], [Problem(line: 1, column: "", text: "unknown column \(unknown) (known: \(known))")])
        }
        if let missing = required.first(where: { !header.contains($0) }) {
            return ([], [Problem(line: 1, column: "", text: "missing column \(missing)")])
        }
        guard rows.count <= ContractLimits.maxPersons else {
            let text = "more than \(ContractLimits.maxPersons) lines: split the file"
            return ([], [Problem(line: 0, column: "", text: text)])
        }
        var records: [Record] = []
        var problems: [Problem] = []
        for (index, row) in rows.enumerated() {
            let line = index + 2
            if row.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) { continue }
            guard row.count == header.count else {
                let text = "has \(row.count) fields, the header has \(header.count)"
                problems.append(Problem(line: line, column: "", text: text))
                continue
            }
            let values = row.map { $0.trimmingCharacters(in: .whitespaces) }
            records.append(Record(line: line, fields: Dictionary(zip(header, values), uniquingKeysWith: { a, _ in a })))
        }
        return (records, problems)
    }

    /// Persons from records. A person without a person_ref gets the first free "P<n>", skipping the
    /// refs the file names and `taken` (the refs a case already has, when persons are added to it).
    public static func persons(_ records: [Record], taken: Set<String> = []) -> (persons: [Person], problems: [Problem])
    {
        var persons: [Person] = []
        var problems: [Problem] = []
        var refs = Set<String>()
        for record in records {
            do throws(Problem) {
                let person = try self.person(record)
                if !person.personRef.isEmpty {
                    guard !refs.contains(person.personRef) else {
                        throw Problem(line: record.line, column: "person_ref", text: "used on an earlier line")
                    }
                    guard !taken.contains(person.personRef) else {
                        throw Problem(line: record.line, column: "person_ref", text: "already in the case")
                    }
                    refs.insert(person.personRef)
                }
                persons.append(person)
            } catch {
                problems.append(error)
            }
        }
        if problems.isEmpty && persons.isEmpty {
            problems.append(Problem(line: 0, column: "", text: "no persons in the file"))
        }
        var used = taken.union(refs)
        var next = 1
        for i in persons.indices where persons[i].personRef.isEmpty {
            while used.contains("P\(next)") { next += 1 }
            persons[i].personRef = "P\(next)"
            used.insert(persons[i].personRef)
        }
        return (persons, problems)
    }

    public static func outcomes(_ records: [Record]) -> (outcomes: [PersonOutcome], problems: [Problem]) {
        var outcomes: [PersonOutcome] = []
        var problems: [Problem] = []
        for record in records {
            var outcome = PersonOutcome()
            outcome.personRef = record.fields["person_ref"] ?? ""
            guard let status = PersonStatus(name: record.fields["status"] ?? ""), status != .unspecified else {
                let choices = PersonStatus.choices.joined(separator: ", ")
                problems.append(Problem(line: record.line, column: "status", text: "must be one of \(choices)"))
                continue
            }
            outcome.status = status
            outcome.note = record.fields["note"] ?? ""
            outcomes.append(outcome)
        }
        if problems.isEmpty && outcomes.isEmpty {
            problems.append(Problem(line: 0, column: "", text: "no outcomes in the file"))
        }
        return (outcomes, problems)
    }

    private static func person(_ record: Record) throws(Problem) -> Person {
        func problem(_ column: String, _ text: String) -> Problem {
            Problem(line: record.line, column: column, text: text)
        }
        let fields = record.fields
        var person = Person()
        person.personRef = fields["person_ref"] ?? ""
        person.fullName = fields["full_name"] ?? ""
        guard !person.fullName.isEmpty else { throw problem("full_name", "is empty") }
        person.nativeName = fields["native_name"] ?? ""
        person.otherNames = list(fields["other_names"])
        person.nationality = (fields["nationality"] ?? "").uppercased()
        person.dateOfBirth = fields["date_of_birth"] ?? ""
        if let sex = fields["sex"], !sex.isEmpty {
            guard let parsed = Sex(name: sex) else { throw problem("sex", "must be female, male or other") }
            person.sex = parsed
        }
        if let number = fields["document_number"], !number.isEmpty {
            var document = TravelDocument()
            document.number = number
            document.issuingCountry = (fields["document_country"] ?? "").uppercased()
            guard let withheld = flag(fields["document_withheld"]) else {
                throw problem("document_withheld", "must be yes or no")
            }
            document.withheld = withheld
            person.travelDocument = document
        }
        person.phone = fields["phone"] ?? ""
        person.languages = list(fields["languages"])
        guard let minor = flag(fields["minor"]) else { throw problem("minor", "must be yes or no") }
        person.minor = minor
        person.needs = list(fields["needs"])
        person.description = fields["description"] ?? ""
        var checked = person
        if checked.personRef.isEmpty { checked.personRef = "P" }  // refs are given after every line is read
        if let (field, text) = Validation.problem(in: checked) { throw problem(field, text) }
        return person
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
public enum CSV {
    public static func parse(_ text: String) throws(PersonsTable.Problem) -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = ""
        var quoted = false, line = 1
        var iterator = Array(text.unicodeScalars).makeIterator()
        var pending: Unicode.Scalar? = nil
        func next() -> Unicode.Scalar? {
            if let p = pending { pending = nil; return p }
            return iterator.next()
        }
        if let first = next(), first != "\u{FEFF}" { pending = first }  // a spreadsheet's byte-order mark
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
        if quoted { throw PersonsTable.Problem(line: line, column: "", text: "a quoted field is not closed") }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        return rows
    }

    /// One cell for a spreadsheet: quoted when needed, and a value a spreadsheet would run as a
    /// formula (=, +, -, @, tab, carriage return first) kept as text with a leading apostrophe.
    public static func cell(_ value: String) -> String {
        var text = value
        if let first = text.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first) { text = "'" + text }
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
