/// One HTTP/1.1 request: what the staff console's HTTPS listener answers.
public struct HTTP1Request: Sendable, Equatable {
    public var method: String
    public var target: String
    /// Lower-case names, in order.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// The client asked to close after this request (or spoke HTTP/1.0).
    public var close: Bool

    public init(
        method: String,
        target: String,
        headers: [(name: String, value: String)],
        body: [UInt8],
        close: Bool
    ) {
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.close = close
    }

    public func header(_ name: String) -> String? { headers.first { $0.name == name }?.value }

    public static func == (a: HTTP1Request, b: HTTP1Request) -> Bool {
        a.method == b.method && a.target == b.target && a.body == b.body && a.close == b.close
            && a.headers.map(\.name) == b.headers.map(\.name) && a.headers.map(\.value) == b.headers.map(\.value)
    }
}

/// Requests out of the bytes of one connection, with no I/O: bytes in, requests or a refusal out.
/// Bounded: a head larger than `maxHeadBytes` is 431, a body larger than `maxBodyBytes` 413, and
/// nothing beyond is buffered. Request bodies need Content-Length (chunked uploads are refused:
/// no client of the console needs them).
public struct HTTP1Parser: Sendable {
    public enum Next: Sendable, Equatable {
        case needMore
        case request(HTTP1Request)
        /// The request is refused and the connection must close after this answer.
        case refuse(status: Int, reason: String)
    }

    public let maxHeadBytes: Int
    public let maxBodyBytes: Int
    private var buffer: [UInt8] = []
    private var pending: HTTP1Request?
    private var bodyLength = 0
    private var failed = false

    public init(maxHeadBytes: Int = 16 * 1024, maxBodyBytes: Int = 4 * 1024 * 1024) {
        self.maxHeadBytes = maxHeadBytes
        self.maxBodyBytes = maxBodyBytes
    }

    /// Bytes held for a request not yet complete.
    public var bufferedBytes: Int { buffer.count }

    public mutating func append(_ bytes: some Sequence<UInt8>) {
        guard !failed else { return }
        buffer.append(contentsOf: bytes)
    }

    public mutating func next() -> Next {
        guard !failed else { return .needMore }
        if pending == nil {
            guard let end = headEnd() else {
                return buffer.count > maxHeadBytes
                    ? fail(431, "request head larger than \(maxHeadBytes) bytes") : .needMore
            }
            guard end <= maxHeadBytes else { return fail(431, "request head larger than \(maxHeadBytes) bytes") }
            let head = Array(buffer[..<end])
            buffer.removeFirst(end + 4)
            switch parseHead(head) {
            case .failure(let refusal): return fail(refusal.status, refusal.reason)
            case .success(let (request, length)):
                pending = request
                bodyLength = length
            }
        }
        guard buffer.count >= bodyLength, var request = pending else { return .needMore }
        request.body = Array(buffer[..<bodyLength])
        buffer.removeFirst(bodyLength)
        pending = nil
        return .request(request)
    }

    private struct Refusal: Error {
        let status: Int
        let reason: String
    }

    private func headEnd() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4)
        where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            return i
        }
        return nil
    }

    private func parseHead(_ head: [UInt8]) -> Result<(HTTP1Request, Int), Refusal> {
        // Header values are bytes; only visible ASCII, spaces and tabs are accepted (no obs-fold).
        guard head.allSatisfy({ $0 == 9 || $0 == 10 || $0 == 13 || (32...126).contains($0) }) else {
            return .failure(Refusal(status: 400, reason: "request head holds characters HTTP does not allow"))
        }
        // "\r\n" is one Character in Swift; a bare "\n" is not a line end here.
        let lines = String(decoding: head, as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false)
        let requestLine = lines[0].split(separator: " ", omittingEmptySubsequences: false)
        guard requestLine.count == 3, !requestLine[0].isEmpty, requestLine[1].hasPrefix("/") || requestLine[1] == "*"
        else {
            return .failure(Refusal(status: 400, reason: "malformed request line"))
        }
        let version = requestLine[2]
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else {
            return .failure(Refusal(status: 505, reason: "HTTP/1.1 only"))
        }
        guard !lines.contains(where: { $0.contains("\n") || $0.contains("\r") }) else {
            return .failure(Refusal(status: 400, reason: "a bare CR or LF in the request head"))
        }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex,
                !line.hasPrefix(" "), !line.hasPrefix("\t"),
                line[..<colon].allSatisfy({ $0.isLetter || $0.isNumber || "-_!#$%&'*+.^`|~".contains($0) })
            else {
                return .failure(Refusal(status: 400, reason: "malformed header line"))
            }
            headers.append(
                (line[..<colon].lowercased(), trimmed(line[line.index(after: colon)...]))
            )
        }
        if headers.contains(where: { $0.name == "transfer-encoding" }) {
            return .failure(Refusal(status: 411, reason: "send the body with Content-Length, not chunked"))
        }
        let lengths = Set(headers.filter { $0.name == "content-length" }.map(\.value))
        guard lengths.count <= 1 else { return .failure(Refusal(status: 400, reason: "conflicting Content-Length")) }
        var length = 0
        if let text = lengths.first {
            guard !text.isEmpty, text.count <= 12, text.allSatisfy(\.isASCII), let value = Int(text), value >= 0 else {
                return .failure(Refusal(status: 400, reason: "malformed Content-Length"))
            }
            guard value <= maxBodyBytes else {
                return .failure(Refusal(status: 413, reason: "request body larger than \(maxBodyBytes) bytes"))
            }
            length = value
        }
        let connection = headers.first { $0.name == "connection" }?.value.lowercased() ?? ""
        let request = HTTP1Request(
            method: String(requestLine[0]),
            target: String(requestLine[1]),
            headers: headers,
            body: [],
            close: version == "HTTP/1.0" ? !connection.contains("keep-alive") : connection.contains("close")
        )
        return .success((request, length))
    }

    private func trimmed(_ text: Substring) -> String {
        String(text.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }

    private mutating func fail(_ status: Int, _ reason: String) -> Next {
        failed = true
        buffer = []
        return .refuse(status: status, reason: reason)
    }
}

/// Response bytes: a head, then either a whole body or chunks.
public enum HTTP1Response {
    public static func head(status: Int, headers: [(String, String)]) -> [UInt8] {
        var text = "HTTP/1.1 \(status) \(reason(status))\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        return Array((text + "\r\n").utf8)
    }

    public static func chunk(_ bytes: [UInt8]) -> [UInt8] {
        guard !bytes.isEmpty else { return [] }
        return Array(String(bytes.count, radix: 16).utf8) + [13, 10] + bytes + [13, 10]
    }

    public static let lastChunk: [UInt8] = Array("0\r\n\r\n".utf8)

    public static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 411: "Length Required"
        case 412: "Precondition Failed"
        case 413: "Content Too Large"
        case 415: "Unsupported Media Type"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 499: "Client Closed Request"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        default: "Status"
        }
    }
}
