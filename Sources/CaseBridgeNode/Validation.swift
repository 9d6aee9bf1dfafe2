import CaseBridgeProto
import CaseBridgeRPC

/// Checks of formats the contract names. Errors name the field, never echo its value: values may be
/// personal data.
public enum Validation {
    static func isNodeID(_ id: String) -> Bool {
        !id.isEmpty && id.count <= 64
            && id.unicodeScalars.allSatisfy {
                ("a"..."z").contains($0) || ("0"..."9").contains($0) || "-._".unicodeScalars.contains($0)
            }
    }

    static func isCountry(_ code: String) -> Bool {
        code.count == 2 && code.unicodeScalars.allSatisfy { ("A"..."Z").contains($0) }
    }

    static func isEndpoint(_ endpoint: String) -> Bool {
        guard let colon = endpoint.lastIndex(of: ":"), let port = Int(endpoint[endpoint.index(after: colon)...]) else {
            return false
        }
        return colon > endpoint.startIndex && (0...65535).contains(port)
    }

    // Formats are checked on UTF-8 bytes: every request is checked, and Character properties are slow.
    private static func isDigit(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) }

    public static func isUUID(_ text: String) -> Bool {
        text.utf8.count == 36
            && text.utf8.enumerated().allSatisfy { i, byte in
                i == 8 || i == 13 || i == 18 || i == 23 ? byte == 0x2D : isDigit(byte) || (0x61...0x66).contains(byte)
            }
    }

    static func isPhone(_ text: String) -> Bool {
        let bytes = text.utf8
        return bytes.first == 0x2B && (8...16).contains(bytes.count) && bytes.dropFirst().allSatisfy(isDigit)
    }

    /// YYYY, YYYY-MM or YYYY-MM-DD, with a month of 1 to 12 and a day of 1 to 31.
    static func isPartialDate(_ text: String) -> Bool {
        let count = text.utf8.count
        guard count == 4 || count == 7 || count == 10 else { return false }
        var value = 0  // the part being read
        for (i, byte) in text.utf8.enumerated() {
            if i == 4 || i == 7 {
                guard byte == 0x2D, i == 4 || (1...12).contains(value) else { return false }
                value = 0
            } else {
                guard isDigit(byte) else { return false }
                value = value * 10 + Int(byte - 0x30)
            }
        }
        return count == 4 || (1...(count == 7 ? 12 : 31)).contains(value)
    }

    /// A wire number used as a stored id (event, inbox entry): the store's ids are signed 64-bit,
    /// so anything larger names nothing and is refused rather than converted.
    static func storedID(_ value: UInt64, field: String) throws(RPCError) -> Int64 {
        guard let id = Int64(exactly: value) else {
            throw RPCError(.invalidArgument, "\(field): must be at most \(Int64.max)")
        }
        return id
    }

    /// The largest batch one request may name.
    public static let maxPersons = ContractLimits.maxPersons

    /// Checks a request as a receiver (or the submitting node) must, before anything is stored.
    public static func check(_ request: InterventionRequest) throws(RPCError) {
        func invalid(_ field: String, _ problem: String) -> RPCError {
            RPCError(.invalidArgument, "\(field): \(problem)")
        }
        guard isUUID(request.requestID) else { throw invalid("request_id", "must be a lower-case UUID") }
        guard isNodeID(request.originNode) else { throw invalid("origin_node", "must be a node id") }
        // A kind this version does not know comes from a newer node: kept and shown as a number.
        guard request.kind != .unspecified else {
            throw invalid("kind", "must be set (rescue, welfare_check, repatriation, trace, ...)")
        }
        guard !request.persons.isEmpty, request.persons.count <= maxPersons else {
            throw invalid("persons", "must name 1 to \(maxPersons) persons (has \(request.persons.count))")
        }
        // Characters are counted only when the bytes could be too many (counting them is slow).
        guard request.summary.utf8.count <= 20_000 || request.summary.count <= 20_000 else {
            throw invalid("summary", "longer than 20,000 characters")
        }
        var refs = Set<String>()
        for (i, person) in request.persons.enumerated() {
            if let (name, problem) = problem(in: person) { throw invalid("persons[\(i)].\(name)", problem) }
            guard refs.insert(person.personRef).inserted else {
                throw invalid("persons[\(i)].person_ref", "used twice in the request")
            }
        }
        if let point = request.location?.coordinates {
            guard (-90...90).contains(point.latitude), (-180...180).contains(point.longitude) else {
                throw invalid("location.coordinates", "latitude must be -90 to 90 and longitude -180 to 180")
            }
        }
    }

    static func check(_ person: Person, field: @autoclosure () -> String) throws(RPCError) {
        if let (name, problem) = problem(in: person) {
            throw RPCError(.invalidArgument, "\(field()).\(name): \(problem)")
        }
    }

    /// The first thing wrong with a person's fields: the field's name and what is wrong, never its value.
    public static func problem(in person: Person) -> (field: String, problem: String)? {
        if !(1...64).contains(person.personRef.count) { return ("person_ref", "must be 1 to 64 characters") }
        if !person.nationality.isEmpty, !isCountry(person.nationality) {
            return ("nationality", "must be an ISO 3166-1 alpha-2 code such as ID")
        }
        if !person.dateOfBirth.isEmpty, !isPartialDate(person.dateOfBirth) {
            return ("date_of_birth", "must be YYYY-MM-DD, YYYY-MM or YYYY")
        }
        if !person.phone.isEmpty, !isPhone(person.phone) { return ("phone", "must be E.164, e.g. +6281234567890") }
        if let document = person.travelDocument, !document.issuingCountry.isEmpty, !isCountry(document.issuingCountry) {
            return ("travel_document.issuing_country", "must be an ISO 3166-1 alpha-2 code")
        }
        return nil
    }
}
