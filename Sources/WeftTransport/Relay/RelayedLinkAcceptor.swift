import Logging
import NIOCore
import WeftTunnel
import WeftWire

/// Where relayed links arrive: a stream under `RelayProtocol.delivery` on a tunnel to a relay
/// becomes a link exactly as a connection to a listening socket would — the same admission
/// (the relay counts as one source), the same TLS with the same pinned certificates, the same
/// handshake and decision. The relay vouches for nothing: the stream's target only names who
/// asked, and the link's TLS and handshake decide who it is.
public struct RelayedLinkAcceptor: Sendable {
    private let site: LocalLinkSite
    private let handshakeTimeout: TimeAmount
    private let admission: HandshakeAdmission
    private let handlers: LinkListener.Handlers
    private let warnings = LogLimiter()
    private let logger: Logger

    public init(
        site: LocalLinkSite, handshakeTimeout: TimeAmount = .seconds(5), admission: HandshakeAdmission,
        handlers: LinkListener.Handlers, logger: Logger
    ) {
        self.site = site
        self.handshakeTimeout = handshakeTimeout
        self.admission = admission
        self.handlers = handlers
        self.logger = logger
    }

    /// For the `onIncomingStream` of a tunnel to a relay, for a `RelayProtocol.delivery`
    /// stream: the channel that becomes the link, or nil when it is refused (reset here).
    public func accept(_ stream: StreamID, from relay: TunnelDriver) -> TunnelStreamDelegate? {
        relay.eventLoop.preconditionInEventLoop()
        guard relay.relayedLinks == 0 else {
            // The relay reaches us only through yet another relay: no link rides on a relayed one.
            relay.reset(stream, code: .relayLoop, message: "this site's tunnel to the relay is relayed itself")
            logger.warning(
                "refused a relayed link: the tunnel to its relay is relayed", metadata: ["relay": "\(relay.peerSite)"])
            return nil
        }
        let channel = TunnelStreamChannel.accepted(stream, on: relay)
        guard
            let ready = LinkListener.admit(
                channel, source: "relay \(relay.peerSite)", capPerSource: true, site: site,
                handshakeTimeout: handshakeTimeout, admission: admission, handlers: handlers, transport: .relay,
                securedByTransport: false, backup: false, warnings: warnings, logger: logger)
        else {
            // Ends the channel too (nothing else would: the driver never hears of it).
            channel.refuse(.limitReached, "too many link handshakes in progress")
            return nil
        }
        // Activated once the driver has taken the channel as the stream's delegate.
        relay.eventLoop.execute {
            do {
                try channel.activate(ready)
            } catch {
                channel.refuse(.protocolError, "could not start the link: \(error)")
            }
        }
        return channel
    }
}
