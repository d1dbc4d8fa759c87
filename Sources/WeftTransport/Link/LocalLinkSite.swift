import WeftIdentity

/// Who this node is on its links: its site name, this process's incarnation, and TLS with the
/// site certificate.
public struct LocalLinkSite: Sendable {
    public var siteName: String
    public var incarnation: UInt64
    public var tls: LinkTLS

    public init(siteName: String, incarnation: UInt64, tls: LinkTLS) {
        self.siteName = siteName
        self.incarnation = incarnation
        self.tls = tls
    }
}
