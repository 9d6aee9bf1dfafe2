/// Why bytes could not become a message, or a message could not become bytes.
///
/// `field` names the field in proto terms ("casebridge.v1.Person.full_name"), never its value:
/// values may be personal data.
public struct ProtoError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let name: String
        public static let tooLarge = Code(name: "message too large")
        public static let truncated = Code(name: "truncated")
        public static let malformedVarint = Code(name: "malformed varint")
        public static let invalidTag = Code(name: "invalid field tag")
        public static let wrongWireType = Code(name: "wrong wire type")
        public static let invalidUTF8 = Code(name: "invalid UTF-8")
        public static let nulInString = Code(name: "NUL character in string")
        public static let tooDeep = Code(name: "nesting too deep")
        public static let tooManyElements = Code(name: "too many elements")
        public static let unknownMessageType = Code(name: "unknown message type")
        public static let rejectedByProtobufC = Code(name: "rejected by protobuf-c")
        public var description: String { name }
    }

    public var code: Code
    /// The field concerned, or the message type when no one field is.
    public var field: String
    public var detail: String

    public init(_ code: Code, field: String, detail: String = "") {
        self.code = code
        self.field = field
        self.detail = detail
    }

    public var description: String {
        detail.isEmpty ? "\(field): \(code)" : "\(field): \(code) (\(detail))"
    }
}

/// Limits on what the decoder accepts from untrusted bytes, checked on the wire bytes before
/// anything is allocated for them: decoding costs memory per element, not per byte, so a small
/// message of many empty elements must be refused before it is decoded.
public struct ProtoLimits: Sendable, Equatable {
    /// Largest encoded message, in bytes.
    public var maxMessageBytes: Int = 4 * 1024 * 1024
    /// Deepest nesting of messages within messages.
    public var maxDepth: Int = 32
    /// Elements in the whole message: embedded messages, repeated elements and unknown fields.
    /// Each costs roughly 100 bytes once decoded, so the default bounds a decode near 30 MiB.
    public var maxElements: Int = 300_000
    /// Elements of one repeated field in one message, where ``ContractLimits`` names no limit.
    public var maxRepeated: Int = 10_000

    public init(
        maxMessageBytes: Int = 4 * 1024 * 1024,
        maxDepth: Int = 32,
        maxElements: Int = 300_000,
        maxRepeated: Int = 10_000
    ) {
        self.maxMessageBytes = maxMessageBytes
        self.maxDepth = maxDepth
        self.maxElements = maxElements
        self.maxRepeated = maxRepeated
    }

    public static let `default` = ProtoLimits()
}
