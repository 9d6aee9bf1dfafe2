import CLibevent
import Foundation
import Synchronization

/// A resolved IPv4 or IPv6 address and port.
public struct SocketAddress: Sendable, CustomStringConvertible {
    var storage: sockaddr_storage
    var length: Int32
    public let description: String

    /// Parses "127.0.0.1:8443", "[::1]:8443", "unix:/path/to/socket", or resolves "host.example:8443" (blocking).
    public init(endpoint: String) throws(ConnectionError) {
        var storage = sockaddr_storage()
        if endpoint.hasPrefix("unix:") {
            let path = Array(endpoint.dropFirst(5).utf8)
            var address = sockaddr_un()
            let capacity = MemoryLayout.size(ofValue: address.sun_path)
            guard !path.isEmpty, path.count < capacity else {
                throw ConnectionError(.badAddress, "socket path must be 1 to \(capacity - 1) bytes: \(endpoint)")
            }
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path) }
            withUnsafeMutableBytes(of: &storage) { $0.copyBytes(from: withUnsafeBytes(of: address) { Array($0) }) }
            self.storage = storage
            self.length = Int32(MemoryLayout<sockaddr_un>.size)
            self.description = endpoint
            return
        }
        var length = Int32(MemoryLayout<sockaddr_storage>.size)
        let parsed = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { evutil_parse_sockaddr_port(endpoint, $0, &length) }
        }
        if parsed == 0 {
            self.storage = storage
            self.length = length
            self.description = endpoint
            return
        }
        guard let colon = endpoint.lastIndex(of: ":"), let port = UInt16(endpoint[endpoint.index(after: colon)...])
        else {
            throw ConnectionError(.badAddress, "endpoint \"\(endpoint)\" is not host:port")
        }
        let host = String(endpoint[..<colon])
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let first = result, let address = first.pointee.ai_addr else {
            throw ConnectionError(.badAddress, "cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(result) }
        withUnsafeMutableBytes(of: &storage) {
            $0.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(first.pointee.ai_addrlen)))
        }
        self.storage = storage
        self.length = Int32(first.pointee.ai_addrlen)
        self.description = endpoint
    }

    init(_ address: UnsafePointer<sockaddr>, length: Int32) {
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) {
            $0.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(length)))
        }
        self.storage = storage
        self.length = length
        var text = [CChar](repeating: 0, count: 64)
        let port: UInt16
        if address.pointee.sa_family == sa_family_t(AF_INET6) {
            let v6 = UnsafeRawPointer(address).load(as: sockaddr_in6.self)
            var a = v6.sin6_addr
            evutil_inet_ntop(AF_INET6, &a, &text, text.count)
            port = UInt16(bigEndian: v6.sin6_port)
            description = "[\(Self.text(text))]:\(port)"
        } else {
            let v4 = UnsafeRawPointer(address).load(as: sockaddr_in.self)
            var a = v4.sin_addr
            evutil_inet_ntop(AF_INET, &a, &text, text.count)
            port = UInt16(bigEndian: v4.sin_port)
            description = "\(Self.text(text)):\(port)"
        }
    }

    /// A NUL-terminated C string in a buffer.
    private static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public var isUnix: Bool { storage.ss_family == sa_family_t(AF_UNIX) }
    /// The address without its port: what per-source limits count by.
    public var host: String { Self.host(of: description) }

    /// "203.0.113.9:4431" → "203.0.113.9", "[::1]:4431" → "[::1]"; "unix:/path" stays as it is.
    public static func host(of address: String) -> String {
        guard !address.hasPrefix("unix:"), let colon = address.lastIndex(of: ":") else { return address }
        return String(address[..<colon])
    }
    var unixPath: String? { isUnix ? String(description.dropFirst(5)) : nil }

    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, Int32) -> R) -> R {
        withUnsafePointer(to: storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) } }
    }
}

extension SocketAddress {
    /// A TCP port on 127.0.0.1 that was free a moment ago (for tests, demos and benchmarks that
    /// must write an endpoint into a directory before the node binds it). Chosen below the kernel's
    /// ephemeral range, so that outgoing connections cannot take it in the meantime, and never the
    /// same port twice in one process, so that tests running side by side cannot pick the same one.
    public static func freeLoopbackPort() -> Int {
        for _ in 0..<200 {
            let port = Int.random(in: 20_000..<32_000)
            guard handedOut.withLock({ $0.insert(port).inserted }) else { continue }
            let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            Glibc.close(fd)
            if bound == 0 { return port }
        }
        return 0
    }

    private static let handedOut = Mutex<Set<Int>>([])
}
