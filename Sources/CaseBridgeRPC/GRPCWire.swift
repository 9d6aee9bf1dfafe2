import CaseBridgeHTTP2

/// The pieces of gRPC over HTTP/2 that need no connection (PROTOCOL-HTTP2.md).
enum GRPCWire {
    static let contentType = "application/grpc"

    /// Header names that are transport, not custom metadata.
    static func isReserved(_ name: String) -> Bool {
        name.hasPrefix(":") || name.hasPrefix("grpc-") || name == "content-type" || name == "te"
            || name == "user-agent" || name == "content-length" || name == "host"
    }

    static func metadata(from headers: [HTTP2Header]) -> Metadata {
        var metadata = Metadata()
        for header in headers where !isReserved(header.name) { metadata.add(header.name, header.value) }
        return metadata
    }

    static func headers(from metadata: Metadata) -> [HTTP2Header] {
        metadata.entries.map { HTTP2Header($0.name, $0.value) }
    }

    /// The Length-Prefixed-Message header: a compressed flag and a 4-byte length.
    static let prefixBytes = 5

    /// Length-Prefixed-Message: compressed flag 0, 4-byte big-endian length, message.
    static func frame(_ message: [UInt8]) -> [UInt8] {
        var framed = [UInt8]()
        framed.reserveCapacity(message.count + 5)
        let n = UInt32(message.count)
        framed.append(contentsOf: [
            0, UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8),
            UInt8(truncatingIfNeeded: n),
        ])
        framed.append(contentsOf: message)
        return framed
    }

    // MARK: grpc-timeout

    /// "100m", "5S", "1H": at most 8 digits and a unit (H M S m u n).
    static func parseTimeout(_ text: String) -> Duration? {
        guard let unit = text.last, text.count >= 2, text.count <= 9, let value = Int64(text.dropLast()), value >= 0
        else { return nil }
        switch unit {
        case "H": return .seconds(value * 3600)
        case "M": return .seconds(value * 60)
        case "S": return .seconds(value)
        case "m": return .milliseconds(value)
        case "u": return .microseconds(value)
        case "n": return .nanoseconds(value)
        default: return nil
        }
    }

    static func formatTimeout(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let micros = max(0, seconds) * 1_000_000 + max(0, attoseconds) / 1_000_000_000_000
        if micros < 100_000_000 { return "\(max(micros, 1))u" }
        let millis = micros / 1000
        if millis < 100_000_000 { return "\(millis)m" }
        return "\(min(millis / 1000, 99_999_999))S"
    }

    // MARK: grpc-message

    /// Percent-encodes everything outside printable ASCII (and "%" itself), as UTF-8 bytes.
    static func percentEncode(_ message: String) -> String {
        var out = ""
        for byte in message.utf8 {
            if byte >= 0x20 && byte <= 0x7e && byte != 0x25 {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = Array("0123456789ABCDEF")
                out += "%\(hex[Int(byte >> 4)])\(hex[Int(byte & 0xf)])"
            }
        }
        return out
    }

    /// Decodes %XX sequences; anything malformed is kept as it is (the spec asks for leniency).
    static func percentDecode(_ text: String) -> String {
        let bytes = Array(text.utf8)
        var out = [UInt8]()
        var i = 0
        while i < bytes.count {
            if bytes[i] == 0x25, i + 2 < bytes.count, let high = hexValue(bytes[i + 1]),
                let low = hexValue(bytes[i + 2])
            {
                out.append(high << 4 | low)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x37
        case 0x61...0x66: c - 0x57
        default: nil
        }
    }

    /// The gRPC code for an HTTP status that is not 200 (http-grpc-status-mapping.md).
    static func code(forHTTPStatus status: Int) -> RPCCode {
        switch status {
        case 400: .internal
        case 401: .unauthenticated
        case 403: .permissionDenied
        case 404: .unimplemented
        case 429, 502, 503, 504: .unavailable
        default: .unknown
        }
    }

    static func trailers(_ code: RPCCode, _ message: String, _ metadata: Metadata) -> [HTTP2Header] {
        var headers = [HTTP2Header("grpc-status", String(code.rawValue))]
        if !message.isEmpty { headers.append(HTTP2Header("grpc-message", percentEncode(message))) }
        return headers + Self.headers(from: metadata)
    }
}

/// Splits a stream of DATA bytes into gRPC messages, refusing any over the size limit.
struct MessageDeframer {
    let maxMessageBytes: Int
    private var buffer: [UInt8] = []

    init(maxMessageBytes: Int) { self.maxMessageBytes = maxMessageBytes }

    /// Appends bytes and returns every message now complete.
    mutating func push(_ bytes: UnsafeRawBufferPointer) throws(RPCError) -> [[UInt8]] {
        buffer.append(contentsOf: bytes)
        var messages: [[UInt8]] = []
        var start = 0
        while buffer.count - start >= 5 {
            let flag = buffer[start]
            let length =
                Int(buffer[start + 1]) << 24 | Int(buffer[start + 2]) << 16 | Int(buffer[start + 3]) << 8
                | Int(buffer[start + 4])
            guard flag == 0 else {
                throw RPCError(
                    flag == 1 ? .unimplemented : .internal,
                    flag == 1
                        ? "compressed messages are not supported (grpc-encoding identity only)"
                        : "invalid message flag \(flag)"
                )
            }
            guard length <= maxMessageBytes else {
                throw RPCError(
                    .resourceExhausted,
                    "message of \(length) bytes exceeds the limit of \(maxMessageBytes) bytes"
                )
            }
            guard buffer.count - start - 5 >= length else { break }
            messages.append(Array(buffer[(start + 5)..<(start + 5 + length)]))
            start += 5 + length
        }
        if start > 0 { buffer.removeFirst(start) }
        return messages
    }

    /// True when bytes of an unfinished message are waiting.
    var hasPartialMessage: Bool { !buffer.isEmpty }
}
