/// A protobuf message as a plain Swift value.
///
/// Generated types only say which property is which field number; the codec
/// (``ProtoCodec``) does all wire work, walking protobuf-c's descriptors.
public protocol ProtoMessage: Sendable, Equatable, ProtoFieldValue {
    /// Fully qualified name, e.g. "casebridge.v1.Person".
    static var protoName: String { get }
    init()
    init(fields: ProtoFields)
    var protoFields: ProtoFields { get }
}

/// A proto3 enum: open, so a value this version does not know is kept as its number.
public protocol ProtoEnum: Sendable, Hashable, ProtoFieldValue, CustomStringConvertible {
    var rawValue: Int32 { get }
    init(rawValue: Int32)
    static var names: [Int32: String] { get }
}

extension ProtoEnum {
    /// The value's name as in the .proto file ("in_progress"), or its number if unknown.
    public var description: String { Self.names[rawValue] ?? String(rawValue) }
    /// The value with this name ("in_progress"; "in-progress" and upper case accepted).
    public init?(name: String) {
        let wanted = String(name.lowercased().map { $0 == "-" ? "_" : $0 })
        guard let match = Self.names.first(where: { $0.value == wanted }) else { return nil }
        self.init(rawValue: match.key)
    }
    public init(protoValue: ProtoValue) { self.init(rawValue: Int32(truncatingIfNeeded: protoValue.int)) }
    /// The names a person may type, in the .proto file's order ("unspecified" left out).
    public static var choices: [String] { names.filter { $0.key != 0 }.sorted { $0.key < $1.key }.map(\.value) }
    public var protoValue: ProtoValue { .int(Int64(rawValue)) }
    public static var protoDefault: Self { Self(rawValue: 0) }
}

extension ProtoMessage {
    public init(protoValue: ProtoValue) {
        if case .message(let fields) = protoValue { self.init(fields: fields) } else { self.init() }
    }
    public var protoValue: ProtoValue { .message(protoFields) }
    public static var protoDefault: Self { Self() }
}

/// One field's value as the codec sees it, independent of the Swift type.
public indirect enum ProtoValue: Sendable, Equatable {
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case bool(Bool)
    case string(String)
    case bytes([UInt8])
    case message(ProtoFields)
    case list([ProtoValue])

    var int: Int64 {
        switch self {
        case .int(let v): v
        case .uint(let v): Int64(truncatingIfNeeded: v)
        default: 0
        }
    }
}

/// The fields of one message by number. Repeated fields hold a `.list`.
///
/// Kept as a short array in field-number order rather than a dictionary: a message has a handful
/// of fields, and the codec and the generated types visit them in that order, so a set appends
/// and a lookup is a few comparisons, without hashing.
public struct ProtoFields: Sendable, Equatable {
    private struct Entry: Sendable, Equatable {
        let number: UInt32
        var value: ProtoValue
    }

    private var entries: [Entry] = []

    public init() {}

    /// Room for `count` fields, so that a decoded message's fields are stored without regrowing.
    init(capacity count: Int) { entries.reserveCapacity(count) }

    /// The value of field `number`, or nil if it is not set; setting nil removes it.
    subscript(number: UInt32) -> ProtoValue? {
        get { index(of: number).map { entries[$0].value } }
        set {
            let at = insertionPoint(of: number)
            let present = at < entries.count && entries[at].number == number
            switch (newValue, present) {
            case (let value?, true): entries[at].value = value
            case (let value?, false) where at == entries.count: entries.append(Entry(number: number, value: value))
            case (let value?, false): entries.insert(Entry(number: number, value: value), at: at)
            case (nil, true): entries.remove(at: at)
            case (nil, false): break
            }
        }
    }

    private func index(of number: UInt32) -> Int? {
        let at = insertionPoint(of: number)
        return at < entries.count && entries[at].number == number ? at : nil
    }

    /// The first position whose number is not below `number` (appending in order is checked first).
    private func insertionPoint(of number: UInt32) -> Int {
        guard let last = entries.last, number <= last.number else { return entries.count }
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].number < number { low = middle + 1 } else { high = middle }
        }
        return low
    }

    public func value<T: ProtoFieldValue>(_ number: UInt32) -> T {
        self[number].map(T.init(protoValue:)) ?? T.protoDefault
    }

    public func optional<T: ProtoFieldValue>(_ number: UInt32) -> T? {
        self[number].map(T.init(protoValue:))
    }

    public func values<T: ProtoFieldValue>(_ number: UInt32) -> [T] {
        guard case .list(let list)? = self[number] else { return [] }
        return list.map(T.init(protoValue:))
    }

    public mutating func set<T: ProtoFieldValue>(_ number: UInt32, _ value: T) {
        self[number] = value.protoValue
    }

    public mutating func set<T: ProtoFieldValue>(_ number: UInt32, _ value: T?) {
        self[number] = value?.protoValue
    }

    public mutating func set<T: ProtoFieldValue>(_ number: UInt32, _ list: [T]) {
        self[number] = list.isEmpty ? nil : .list(list.map(\.protoValue))
    }
}

/// A Swift type that a message field can hold.
public protocol ProtoFieldValue: Sendable {
    init(protoValue: ProtoValue)
    var protoValue: ProtoValue { get }
    static var protoDefault: Self { get }
}

extension String: ProtoFieldValue {
    public init(protoValue: ProtoValue) { if case .string(let s) = protoValue { self = s } else { self = "" } }
    public var protoValue: ProtoValue { .string(self) }
    public static var protoDefault: String { "" }
}

extension Array: ProtoFieldValue where Element == UInt8 {
    public init(protoValue: ProtoValue) { if case .bytes(let b) = protoValue { self = b } else { self = [] } }
    public var protoValue: ProtoValue { .bytes(self) }
    public static var protoDefault: [UInt8] { [] }
}

extension Bool: ProtoFieldValue {
    public init(protoValue: ProtoValue) { if case .bool(let b) = protoValue { self = b } else { self = false } }
    public var protoValue: ProtoValue { .bool(self) }
    public static var protoDefault: Bool { false }
}

extension Double: ProtoFieldValue {
    public init(protoValue: ProtoValue) { if case .double(let d) = protoValue { self = d } else { self = 0 } }
    public var protoValue: ProtoValue { .double(self) }
    public static var protoDefault: Double { 0 }
}

extension Float: ProtoFieldValue {
    public init(protoValue: ProtoValue) { if case .double(let d) = protoValue { self = Float(d) } else { self = 0 } }
    public var protoValue: ProtoValue { .double(Double(self)) }
    public static var protoDefault: Float { 0 }
}

/// Integers share one representation: signed as `.int`, unsigned as `.uint`.
public protocol ProtoInteger: FixedWidthInteger, ProtoFieldValue {}
extension ProtoInteger {
    public init(protoValue: ProtoValue) {
        switch protoValue {
        case .int(let v): self.init(truncatingIfNeeded: v)
        case .uint(let v): self.init(truncatingIfNeeded: v)
        default: self = 0
        }
    }
    public var protoValue: ProtoValue {
        Self.isSigned ? .int(Int64(truncatingIfNeeded: self)) : .uint(UInt64(truncatingIfNeeded: self))
    }
    public static var protoDefault: Self { 0 }
}
extension Int32: ProtoInteger {}
extension Int64: ProtoInteger {}
extension UInt32: ProtoInteger {}
extension UInt64: ProtoInteger {}

/// One RPC method of a service, as the .proto file declares it.
public struct RPCMethod<Request: ProtoMessage, Response: ProtoMessage>: Sendable {
    public let service: String
    public let name: String
    public let clientStreaming: Bool
    public let serverStreaming: Bool

    public init(service: String, name: String, clientStreaming: Bool, serverStreaming: Bool) {
        self.service = service
        self.name = name
        self.clientStreaming = clientStreaming
        self.serverStreaming = serverStreaming
    }

    /// The HTTP/2 :path of the method, "/package.Service/Method".
    public var path: String { "/\(service)/\(name)" }
}
