import CaseBridgeMatching
import CaseBridgeProto

/// Persons' traits as bytes, kept (sealed) beside their case: duplicate detection compares these
/// instead of decoding a candidate's whole request and updates. Protobuf wire format written and
/// read with `RawFields`: one length-delimited field 1 per person, holding ref (1), date of birth (2),
/// document (3), phone (4) and each name (5). Records concatenate, so an update that adds persons
/// appends theirs; a field a later version adds is skipped by this one.
enum TraitsRecord {
    struct Person: Sendable, Equatable {
        var personRef: String
        var traits: PersonTraits
    }

    static func encode(_ persons: [Person]) -> [UInt8] {
        var bytes: [UInt8] = []
        for person in persons {
            var record: [UInt8] = []
            let traits = person.traits
            for (number, text) in [person.personRef, traits.dateOfBirth, traits.document, traits.phone].enumerated() {
                RawFields.append(number + 1, Array(text.utf8), to: &record)
            }
            for name in traits.names { RawFields.append(5, Array(name.utf8), to: &record) }
            RawFields.append(1, record, to: &bytes)
        }
        return bytes
    }

    static func decode(_ bytes: [UInt8]) throws(ProtoError) -> [Person] {
        try RawFields.extract(1, from: bytes, message: "TraitsRecord").map { record throws(ProtoError) in
            var person = Person(personRef: "", traits: PersonTraits(names: []))
            for (number, value) in try RawFields.extract(from: record, message: "TraitsRecord.Person") {
                let text = String(decoding: value, as: UTF8.self)
                switch number {
                case 1: person.personRef = text
                case 2: person.traits.dateOfBirth = text
                case 3: person.traits.document = text
                case 4: person.traits.phone = text
                case 5: person.traits.names.append(text)
                default: break  // added by a later version
                }
            }
            return person
        }
    }
}
