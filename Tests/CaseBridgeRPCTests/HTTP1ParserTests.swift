import CaseBridgeHTTP1
import Testing

/// The HTTPS console's HTTP/1.1 request parser, without sockets: bytes in, requests or refusals out.
@Suite("HTTP/1.1 requests")
struct HTTP1ParserTests {
    func parse(_ text: String, maxBody: Int = 1024, in pieces: Int = 1) -> [HTTP1Parser.Next] {
        var parser = HTTP1Parser(maxHeadBytes: 512, maxBodyBytes: maxBody)
        let bytes = Array(text.utf8)
        var results: [HTTP1Parser.Next] = []
        let size = max(1, bytes.count / pieces)
        for start in stride(from: 0, to: bytes.count, by: size) {
            parser.append(bytes[start..<min(start + size, bytes.count)])
            while case let next = parser.next(), next != .needMore { results.append(next) }
        }
        return results
    }

    @Test("a request with a body, in one piece or byte by byte, then a second on the same connection")
    func keepAlive() {
        let two =
            "POST /casebridge.v1.Console/WhoAmI HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + "Content-Length: 2\r\n\r\n{}" + "POST /a HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        for pieces in [1, 7, two.utf8.count] {
            let results = parse(two, in: pieces)
            #expect(results.count == 2, "\(pieces) pieces")
            guard case .request(let first) = results.first, case .request(let second) = results.last else {
                Issue.record("\(results)")
                continue
            }
            #expect(first.method == "POST" && first.target == "/casebridge.v1.Console/WhoAmI")
            #expect(first.header("content-type") == "application/json" && first.body == Array("{}".utf8))
            #expect(!first.close && second.close && second.body.isEmpty)
        }
    }

    @Test("refused: oversized heads and bodies, chunked uploads, conflicting lengths, bad lines, other versions")
    func refusals() {
        let cases: [(String, Int)] = [
            ("POST / HTTP/1.1\r\nX: \(String(repeating: "a", count: 600))\r\n\r\n", 431),
            ("POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", 413),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
            ("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\n folded: header\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nX: a\nY: b\r\n\r\n", 400),
            ("POST / HTTP/2.0\r\n\r\n", 505),
            ("GARBAGE\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nX: caf\u{e9}\r\n\r\n", 400),
        ]
        for (text, status) in cases {
            let results = parse(text)
            guard case .refuse(let got, _) = results.first else {
                Issue.record("not refused: \(text.prefix(60)) → \(results)")
                continue
            }
            #expect(got == status, "\(text.prefix(60))")
            #expect(results.count == 1)
        }
    }

    @Test("a head that never ends is refused once it passes the limit, not buffered without end")
    func endlessHead() {
        var parser = HTTP1Parser(maxHeadBytes: 512, maxBodyBytes: 1024)
        parser.append(Array("POST / HTTP/1.1\r\n".utf8))
        #expect(parser.next() == .needMore)
        parser.append([UInt8](repeating: 0x61, count: 600))
        guard case .refuse(431, _) = parser.next() else {
            Issue.record("not refused")
            return
        }
        parser.append([UInt8](repeating: 0x61, count: 600))
        #expect(parser.bufferedBytes == 0)
    }
}
