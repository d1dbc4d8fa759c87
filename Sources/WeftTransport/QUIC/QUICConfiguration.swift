import CNGTCP2
import NIOCore

/// Congestion control for QUIC links (ngtcp2's own implementations).
public enum QUICCongestionControl: String, Sendable, CaseIterable {
    case cubic
    case bbr
    case reno

    /// The QUIC counterpart of a TCP congestion control named in `tunnel.congestionControl`
    /// (`bbr2` and `bbr` map to BBR, `reno` to Reno); cubic for anything else or nothing.
    public init(kernelName: String?) {
        switch kernelName?.lowercased() {
        case "bbr", "bbr2": self = .bbr
        case "reno": self = .reno
        default: self = .cubic
        }
    }

    var algorithm: ngtcp2_cc_algo {
        switch self {
        case .cubic: NGTCP2_CC_ALGO_CUBIC
        case .bbr: NGTCP2_CC_ALGO_BBR
        case .reno: NGTCP2_CC_ALGO_RENO
        }
    }
}

/// Settings every QUIC link of a site shares.
public struct QUICConfiguration: Sendable {
    public var congestionControl: QUICCongestionControl = .cubic
    /// A connection that hears nothing for this long is gone (QUIC's idle timeout; the tunnel's
    /// own keep-alives usually notice a dead link sooner).
    public var idleTimeout: TimeAmount = .seconds(30)
    /// Sends a PING after this much quiet, so NAT bindings and the idle timer stay fresh.
    public var keepAlive: TimeAmount = .seconds(10)
    public var handshakeTimeout: TimeAmount = .seconds(5)
    /// Flow-control credit a stream starts with, and the most ngtcp2's auto-tuning may grow
    /// it (and the connection's) to: what one link may have in flight from the peer.
    public var initialStreamWindow = 1024 * 1024
    public var streamWindow = 8 * 1024 * 1024
    public var connectionWindow = 8 * 1024 * 1024
    /// Most connections one UDP socket carries (accepted and dialed); more Initials are dropped.
    public var maxConnections = 1024
    /// The largest UDP payload sent to a peer on this very host, where the kernel knows the
    /// whole path (`QUICHostLocalPath`); 0 sends network-sized packets there too. Four of
    /// them fill one segmented send.
    public var hostLocalDatagramSize = 16_000

    public init(congestionControl: QUICCongestionControl = .cubic) {
        self.congestionControl = congestionControl
    }
}
