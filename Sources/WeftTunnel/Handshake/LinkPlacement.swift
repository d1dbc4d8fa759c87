import WeftWire

/// Where an accepted link goes, given the acceptor's current half of its tunnel with the
/// dialer (see `LinkHandshake` for per-tunnel incarnations). A pure decision, so every case is
/// tested without sockets.
///
/// - the hello names this tunnel (or asks for a new one and this tunnel has not met another
///   dialer half): join it;
/// - the hello asks for a new tunnel while this one belongs to another dialer half: the dialer
///   lost its half, so this one ends and a new one is made;
/// - there is no tunnel and the hello asks for a new one: make it;
/// - the hello names a half this side no longer has: refuse (`unknownTunnel`), and the dialer
///   starts a new tunnel.
public enum LinkPlacement: Sendable, Equatable {
    case join(localIncarnation: UInt64)
    case replace
    case create
    case refuse(String)

    /// The acceptor's current tunnel with the dialer: its own half and the dialer's half
    /// (`LinkHandshake.unknownIncarnation` until a link of the dialer's is welcomed).
    public struct Current: Sendable, Equatable {
        public var localIncarnation: UInt64
        public var peerIncarnation: UInt64

        public init(localIncarnation: UInt64, peerIncarnation: UInt64) {
            self.localIncarnation = localIncarnation
            self.peerIncarnation = peerIncarnation
        }
    }

    public static func place(_ hello: LinkHello, acceptor siteName: String, current: Current?) -> LinkPlacement {
        let unknown = LinkHandshake.unknownIncarnation
        guard let requested = LinkHandshake.requestedIncarnation(in: hello, acceptor: siteName) else {
            return .refuse("the tunnel id does not hold the hello's incarnation")
        }
        let fresh = requested == unknown
        guard let current else {
            return fresh ? .create : .refuse("tunnel \(requested) is gone here")
        }
        if (fresh || requested == current.localIncarnation)
            && (current.peerIncarnation == unknown || current.peerIncarnation == hello.incarnation)
        {
            return .join(localIncarnation: current.localIncarnation)
        }
        return fresh ? .replace : .refuse("tunnel \(requested) is gone here")
    }
}
