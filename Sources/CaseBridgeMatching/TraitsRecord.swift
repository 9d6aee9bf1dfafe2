/// Persons' traits as bytes, kept (sealed) beside their case: duplicate detection compares these
/// instead of decoding a candidate's whole request and updates. Each person is one record; records
/// concatenate, so an update that adds persons appends theirs.
///
/// A record: a version byte, then the person ref, date of birth, document, phone and each name, as
/// length-prefixed UTF-8 (LEB128 lengths), the names preceded by their count.
public enum TraitsRecord {
    public struct Person: Sendable, Equatable {
        public var personRef: String
        public var traits: PersonTraits

        public init(personRef: String, traits: PersonTraits) {
            self.personRef = personRef
            self.traits = traits
        }
    }

    public struct Malformed: Error, Sendable {}

    static let version: UInt8 = 1

    public static func encode(_ persons: [Person]) -> [UInt8] {
        var bytes: [UInt8] = []
        for person in persons {
            bytes.append(version)
            let traits = person.traits
            for text in [person.personRef, traits.dateOfBirth, traits.document, traits.phone] {
                append(text, to: &bytes)
            }
            appendLength(traits.names.count, to: &bytes)
            for name in traits.names { append(name, to: &bytes) }
        }
        return bytes
    }

    public static func decode(_ bytes: [UInt8]) throws(Malformed) -> [Person] {
        var reader = Reader(bytes: bytes)
        var persons: [Person] = []
        while !reader.atEnd {
            guard try reader.byte() == version else { throw Malformed() }
            let personRef = try reader.text()
            let dateOfBirth = try reader.text(), document = try reader.text(), phone = try reader.text()
            let count = try reader.length()
            // Each name takes at least its length byte: a count past what is left is not a record.
            guard count <= reader.remaining else { throw Malformed() }
            var names: [String] = []
            names.reserveCapacity(count)
            for _ in 0..<count { names.append(try reader.text()) }
            let traits = PersonTraits(names: names, dateOfBirth: dateOfBirth, document: document, phone: phone)
            persons.append(Person(personRef: personRef, traits: traits))
        }
        return persons
    }

    private static func append(_ text: String, to bytes: inout [UInt8]) {
        appendLength(text.utf8.count, to: &bytes)
        bytes.append(contentsOf: text.utf8)
    }

    private static func appendLength(_ length: Int, to bytes: inout [UInt8]) {
        var value = UInt64(length)
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        var atEnd: Bool { offset == bytes.count }
        var remaining: Int { bytes.count - offset }

        mutating func byte() throws(Malformed) -> UInt8 {
            guard offset < bytes.count else { throw Malformed() }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func length() throws(Malformed) -> Int {
            var value = 0
            for shift in stride(from: 0, to: 35, by: 7) {
                let byte = try byte()
                value |= Int(byte & 0x7F) << shift
                if byte < 0x80 { return value }
            }
            throw Malformed()
        }

        mutating func text() throws(Malformed) -> String {
            let length = try length()
            guard length <= remaining else { throw Malformed() }
            defer { offset += length }
            return String(decoding: bytes[offset..<(offset + length)], as: UTF8.self)
        }
    }
}
