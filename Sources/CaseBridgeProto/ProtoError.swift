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

/// Limits on what the decoder accepts from untrusted bytes.
public struct ProtoLimits: Sendable, Equatable {
    /// Largest encoded message, in bytes.
    public var maxMessageBytes: Int = 4 * 1024 * 1024
    /// Deepest nesting of messages within messages.
    public var maxDepth: Int = 32

    public init(maxMessageBytes: Int = 4 * 1024 * 1024, maxDepth: Int = 32) {
        self.maxMessageBytes = maxMessageBytes
        self.maxDepth = maxDepth
    }

    public static let `default` = ProtoLimits()
}
