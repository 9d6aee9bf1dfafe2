import CaseBridgeNode
import CaseBridgeProto
import Foundation

/// One person, asked for field by field on standard input (questions on standard error when it is
/// a terminal), so that personal data never has to be typed into arguments. Piped answers work too:
/// one line per question, an empty line (or the end of input) to skip one.
enum PersonPrompt {
    static func ask() throws -> Person {
        let interactive = isatty(STDIN_FILENO) != 0
        func answer(_ question: String) -> String {
            if interactive { FileHandle.standardError.write(Data("\(question): ".utf8)) }
            return (readLine() ?? "").trimmingCharacters(in: .whitespaces)
        }
        var person = Person()
        person.personRef = "P1"
        person.fullName = answer("Full name")
        guard !person.fullName.isEmpty else {
            throw fail(
                "no person given: answer the questions (full name first), or give --persons FILE or "
                    + "--persons - (standard input)",
                code: Exit.badInput
            )
        }
        person.nationality = answer("Nationality, e.g. ID (Enter to skip)").uppercased()
        person.dateOfBirth = answer("Date of birth, YYYY-MM-DD (Enter to skip)")
        let sex = answer("Sex: female, male or other (Enter to skip)")
        if !sex.isEmpty { person.sex = try choice(sex, for: "sex") }
        person.phone = answer("Phone, e.g. +6281234567890 (Enter to skip)")
        let document = answer("Travel document number (Enter to skip)")
        if !document.isEmpty {
            var travel = TravelDocument()
            travel.number = document
            travel.withheld = yes(answer("Is the document held by someone else? y/N"))
            person.travelDocument = travel
        }
        person.minor = yes(answer("Under 18, or may be? y/N"))
        if let (field, problem) = Validation.problem(in: person) {
            throw fail("\(field): \(problem)", code: Exit.badInput)
        }
        return person
    }

    private static func yes(_ text: String) -> Bool { ["y", "yes"].contains(text.lowercased()) }
}
