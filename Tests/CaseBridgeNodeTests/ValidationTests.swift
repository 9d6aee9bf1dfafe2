import Foundation
import Testing

@testable import CaseBridgeNode

/// The formats every request is checked against, read byte by byte: checked against the rules as
/// written out plainly (split into parts, then each part read).
@Suite("Request formats")
struct ValidationTests {
    /// YYYY, YYYY-MM or YYYY-MM-DD, month 1-12, day 1-31.
    static func plainDate(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...3).contains(parts.count), parts[0].count == 4, parts.dropFirst().allSatisfy({ $0.count == 2 }),
            parts.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } })
        else { return false }
        let numbers = parts.map { Int($0)! }
        return (parts.count < 2 || (1...12).contains(numbers[1])) && (parts.count < 3 || (1...31).contains(numbers[2]))
    }

    static func plainUUID(_ text: String) -> Bool {
        let groups = text.split(separator: "-", omittingEmptySubsequences: false)
        return groups.map(\.count) == [8, 4, 4, 4, 12]
            && groups.allSatisfy { $0.allSatisfy { "0123456789abcdef".contains($0) } }
    }

    @Test("dates of birth: whole, a month or a year, and nothing else")
    func dates() {
        for valid in ["1998", "1998-04", "1998-04-12", "0000-12-31", "2024-01-01"] {
            #expect(Validation.isPartialDate(valid), "\(valid)")
        }
        let invalid = [
            "", "199", "19980", "1998-4", "1998-00", "1998-13", "1998-04-00", "1998-04-32", "1998-04-1",
            "1998/04/12", "1998-04-12-", "-1998-04", "1998--4-12", "１９９８", "1998-04-1a", "98-04-12",
            "1998-0412",
        ]
        for text in invalid { #expect(!Validation.isPartialDate(text), "\(text)") }
        var random = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789-/a ")
        for _ in 0..<5_000 {
            let length = [4, 7, 10, Int.random(in: 0...12, using: &random)].randomElement(using: &random)!
            // Mostly digits, with dashes where a date has them, so that many of them are dates.
            let text = String(
                (0..<length).map { i -> Character in
                    if Int.random(in: 0..<8, using: &random) == 0 { return alphabet.randomElement(using: &random)! }
                    return i == 4 || i == 7 ? "-" : alphabet[i % 3 == 0 ? 0 : 1]
                }
            )
            #expect(Validation.isPartialDate(text) == Self.plainDate(text), "\(text)")
        }
    }

    @Test("request ids: lower-case UUIDs only")
    func uuids() {
        let id = UUID().uuidString.lowercased()
        #expect(Validation.isUUID(id))
        #expect(!Validation.isUUID(id.uppercased()))
        #expect(!Validation.isUUID(String(id.dropLast())))
        #expect(!Validation.isUUID(id + "0"))
        #expect(!Validation.isUUID(id.replacingOccurrences(of: "-", with: "0")))
        var random = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789abcdefg-A")
        for _ in 0..<5_000 {
            var bytes = Array(UUID().uuidString.lowercased())
            for _ in 0..<Int.random(in: 0...2, using: &random) {
                bytes[Int.random(in: 0..<bytes.count, using: &random)] = alphabet.randomElement(using: &random)!
            }
            let text = String(bytes)
            #expect(Validation.isUUID(text) == Self.plainUUID(text), "\(text)")
        }
    }
}
