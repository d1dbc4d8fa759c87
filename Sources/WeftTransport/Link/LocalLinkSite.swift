import WeftIdentity

/// Who this node is on its links: its site name and TLS with the site certificate. (Each
/// tunnel names its own half with an incarnation of its own; see `LinkHandshake`.)
public struct LocalLinkSite: Sendable {
    public var siteName: String
    public var tls: LinkTLS

    public init(siteName: String, tls: LinkTLS) {
        self.siteName = siteName
        self.tls = tls
    }
}
