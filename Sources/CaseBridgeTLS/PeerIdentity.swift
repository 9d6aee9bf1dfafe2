/// A node's identity, as its certificate's URI SAN states it:
/// `spiffe://<trust-domain>/node/<node-id>`.
public struct PeerIdentity: Sendable, Hashable, CustomStringConvertible {
    public let trustDomain: String
    public let nodeID: String

    public init(trustDomain: String, nodeID: String) {
        self.trustDomain = trustDomain
        self.nodeID = nodeID
    }

    /// Parses a SPIFFE URI; nil if it is not of the node form.
    public init?(uri: String) {
        let prefix = "spiffe://"
        guard uri.hasPrefix(prefix) else { return nil }
        let parts = uri.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1] == "node", !parts[0].isEmpty, !parts[2].isEmpty,
            parts.allSatisfy({ $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-._".contains($0)) } })
        else { return nil }
        self.init(trustDomain: String(parts[0]), nodeID: String(parts[2]))
    }

    public var uri: String { "spiffe://\(trustDomain)/node/\(nodeID)" }
    public var description: String { uri }
}
