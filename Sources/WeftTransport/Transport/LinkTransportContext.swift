import NIOCore
import NIOSSL

/// What every TCP-based transport of a site shares: socket settings, the proxy links are dialed
/// through, the CAs a `wss://` reverse proxy is checked against, and the check on where a
/// resolved host name leads.
public struct LinkTransportContext: Sendable {
    /// `TCP_CONGESTION` for every link socket (`bbr`, `cubic`, ...); nil keeps the system's.
    public var congestionControl: String?
    /// Links are dialed through this proxy (the listener side is unaffected).
    public var proxy: LinkProxy?
    /// Trust roots for `wss://` servers: the system's, plus `tunnel.caFile` when set.
    public var webSocketTrust: NIOSSLTrustRoots
    /// Says why a connection to this resolved address must not be made (a host name that leads
    /// somewhere the endpoint policy forbids), or nil to go ahead. Asked once connected, before
    /// any byte is sent.
    public var refuse: @Sendable (SocketAddress) -> String?

    public init(
        congestionControl: String? = nil, proxy: LinkProxy? = nil,
        webSocketTrust: NIOSSLTrustRoots = .default,
        refuse: @escaping @Sendable (SocketAddress) -> String? = { _ in nil }
    ) {
        self.congestionControl = congestionControl
        self.proxy = proxy
        self.webSocketTrust = webSocketTrust
        self.refuse = refuse
    }
}
