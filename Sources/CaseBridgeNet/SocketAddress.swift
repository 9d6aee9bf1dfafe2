import CLibevent
import Foundation

/// A resolved IPv4 or IPv6 address and port.
public struct SocketAddress: Sendable, CustomStringConvertible {
    var storage: sockaddr_storage
    var length: Int32
    public let description: String

    /// Parses "127.0.0.1:8443", "[::1]:8443", or resolves "host.example:8443" (blocking).
    public init(endpoint: String) throws(ConnectionError) {
        var storage = sockaddr_storage()
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
        guard let colon = endpoint.lastIndex(of: ":"), let port = UInt16(endpoint[endpoint.index(after: colon)...]) else {
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
        withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(first.pointee.ai_addrlen))) }
        self.storage = storage
        self.length = Int32(first.pointee.ai_addrlen)
        self.description = endpoint
    }

    init(_ address: UnsafePointer<sockaddr>, length: Int32) {
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(length))) }
        self.storage = storage
        self.length = length
        var text = [CChar](repeating: 0, count: 64)
        let port: UInt16
        if address.pointee.sa_family == sa_family_t(AF_INET6) {
            let v6 = UnsafeRawPointer(address).load(as: sockaddr_in6.self)
            var a = v6.sin6_addr
            evutil_inet_ntop(AF_INET6, &a, &text, text.count)
            port = UInt16(bigEndian: v6.sin6_port)
            description = "[\(String(cString: text))]:\(port)"
        } else {
            let v4 = UnsafeRawPointer(address).load(as: sockaddr_in.self)
            var a = v4.sin_addr
            evutil_inet_ntop(AF_INET, &a, &text, text.count)
            port = UInt16(bigEndian: v4.sin_port)
            description = "\(String(cString: text)):\(port)"
        }
    }

    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, Int32) -> R) -> R {
        withUnsafePointer(to: storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) } }
    }
}
