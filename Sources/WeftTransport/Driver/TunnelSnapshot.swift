import NIOCore
import WeftTunnel

/// A tunnel as operators see it: its links with their addresses, estimates and byte counts.
public struct TunnelSnapshot: Sendable {
    public struct Link: Sendable {
        public var id: LinkID
        public var localAddress: SocketAddress?
        public var remoteAddress: SocketAddress?
        /// The far end's name when the socket has no IP peer address (Bluetooth, USB).
        public var remoteName: String? = nil
        /// This site dialed it (false: the peer did).
        public var dialed: Bool
        /// What the link travels over.
        public var transport: LinkEndpoint.Kind
        /// The relay site whose tunnel carries the link; nil for a direct link.
        public var relay: String?
        /// Dialed or accepted through a hole punched in NATs (issue 18).
        public var punched: Bool = false
        public var bytesSent: UInt64
        public var bytesReceived: UInt64
        public var statistics: LinkStatistics?

        /// How the link reaches the peer: `direct`, `punched`, or `relayed via SITE`.
        public var path: String { Self.path(relay: relay, punched: punched) }

        /// The path's name for a link carried by `relay` (or none), punched or not.
        static func path(relay: String?, punched: Bool) -> String {
            relay.map { "relayed via \($0)" } ?? (punched ? "punched" : "direct")
        }
    }

    public var peer: String
    public var localIncarnation: UInt64
    public var peerIncarnation: UInt64
    public var openStreams: Int
    public var resentBytes: Int
    public var bytesSent: UInt64
    public var bytesReceived: UInt64
    public var links: [Link]
    public var ended: Bool
}
