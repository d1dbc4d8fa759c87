import NIOCore

/// One frame on a link. Every link carries the handshake first (`hello`, then `welcome` or
/// `refuse`), then any mix of the others.
///
/// Frames marked reliable are numbered implicitly per link (the n-th reliable frame sent on a
/// link is number n) and kept by the sender until an `ack` covers them; when a link fails they
/// are sent again on another. The rest (acks, pings, pongs) belong to the link they arrive on.
public enum TunnelFrame: Hashable, Sendable {
    case hello(LinkHello)
    case welcome(LinkWelcome)
    case refuse(LinkRefuse)
    /// Opens a stream to an app; data for the stream may follow before the answer.
    case streamOpen(StreamOpen)
    /// Bytes of a stream at an offset; `fin` marks the end of the sender's direction.
    case streamData(StreamData)
    /// Ends a stream in both directions (also the answer to an open that is refused). The side
    /// that did not send it answers with its own reset, so both learn each other's final size.
    case streamReset(StreamReset)
    /// Raises the sender's receive limit for a stream (`streamID` 0: the whole tunnel).
    case windowUpdate(WindowUpdate)
    /// Cumulative: this many reliable frames of the receiving side's link have arrived.
    case ack(UInt64)
    case ping(UInt64)
    case pong(UInt64)
    /// The sender closes the link (or, with `tunnel`, the whole tunnel) on purpose.
    case goodbye(Goodbye)
    /// How the sender wants this link used from now on (an operator blocked it). Sent only to
    /// a peer whose hello or welcome had `LinkHello.linkPolicyFrames`.
    case linkPolicy(LinkPolicy)

    /// Whether the frame is numbered, kept until acknowledged and re-sent after a link loss.
    public var isReliable: Bool {
        switch self {
        case .streamOpen, .streamData, .streamReset, .windowUpdate: true
        case .hello, .welcome, .refuse, .ack, .ping, .pong, .goodbye, .linkPolicy: false
        }
    }
}

/// Frame type codes on the wire.
public enum TunnelFrameType: UInt8, Sendable {
    case hello = 0x01
    case welcome = 0x02
    case refuse = 0x03
    case streamOpen = 0x10
    case streamData = 0x11
    case streamReset = 0x12
    case windowUpdate = 0x13
    case ack = 0x20
    case ping = 0x21
    case pong = 0x22
    case goodbye = 0x23
    case linkPolicy = 0x24
}

/// What a `linkPolicy` frame says about the link it arrives on.
public struct LinkPolicy: Hashable, Sendable {
    /// Carry no stream data on this link (acks and pings go on).
    public var blocked: Bool

    public init(blocked: Bool) {
        self.blocked = blocked
    }
}

/// Hard limits every parser enforces before it allocates.
public struct TunnelFrameLimits: Hashable, Sendable {
    /// Largest frame payload accepted (the header is extra).
    public var maxPayload: Int
    /// Largest data chunk a sender puts in one `streamData` frame.
    public var maxDataChunk: Int

    public static let `default` = TunnelFrameLimits(maxPayload: 1 << 20, maxDataChunk: 64 << 10)

    public init(maxPayload: Int, maxDataChunk: Int) {
        self.maxPayload = maxPayload
        self.maxDataChunk = maxDataChunk
    }

    public static let appName = 255
    public static let target = 300
    public static let reason = 255
    public static let siteName = 255
}

/// The first frame a dialing side sends on a new link.
public struct LinkHello: Hashable, Sendable {
    /// "WEFT": refuses a peer that is not speaking this protocol at all.
    public static let magic: UInt32 = 0x5745_4654

    /// Protocol versions the sender speaks.
    public var minVersion: UInt16
    public var maxVersion: UInt16
    public var siteName: String
    /// Random per process start of the sender.
    public var incarnation: UInt64
    /// The tunnel this link joins (or creates): derived by both sides from both incarnations.
    public var tunnelID: [UInt8]
    /// Numbers the sender's links within the tunnel.
    public var linkID: UInt32
    public var capabilities: UInt32

    public static let tunnelIDLength = 16

    /// Bit of a hello's or a welcome's `capabilities`: the sender's end of this link is a backup
    /// path (a metered uplink, a standby socket). Both sides then carry data on it only while
    /// the tunnel has no primary link up; it always carries acks and pings.
    public static let backupLink: UInt32 = 1 << 0
    /// Bit of `capabilities`: the sender understands `linkPolicy` frames.
    public static let linkPolicyFrames: UInt32 = 1 << 1
    /// Bit of `capabilities`: the sender reads a `StreamOpen.origin`.
    public static let streamOrigins: UInt32 = 1 << 2
    /// Bit of `capabilities`: the sender reads `StreamOpen.datagrams` (UDP apps). An older peer
    /// ignores the flag and would connect a TCP socket, so no such stream is opened to it.
    public static let datagramStreams: UInt32 = 1 << 3

    public init(
        minVersion: UInt16,
        maxVersion: UInt16,
        siteName: String,
        incarnation: UInt64,
        tunnelID: [UInt8],
        linkID: UInt32,
        capabilities: UInt32
    ) {
        self.minVersion = minVersion
        self.maxVersion = maxVersion
        self.siteName = siteName
        self.incarnation = incarnation
        self.tunnelID = tunnelID
        self.linkID = linkID
        self.capabilities = capabilities
    }
}

/// The accepting side's yes.
public struct LinkWelcome: Hashable, Sendable {
    public var version: UInt16
    public var siteName: String
    public var incarnation: UInt64
    public var capabilities: UInt32

    public init(version: UInt16, siteName: String, incarnation: UInt64, capabilities: UInt32) {
        self.version = version
        self.siteName = siteName
        self.incarnation = incarnation
        self.capabilities = capabilities
    }
}

/// The accepting side's no, with a reason a log can show.
public struct LinkRefuse: Hashable, Sendable {
    public struct Reason: Hashable, Sendable, CustomStringConvertible {
        public let code: UInt16
        public init(code: UInt16) { self.code = code }

        public static let unsupportedVersion = Reason(code: 1)
        /// The tunnel id belongs to an incarnation that no longer exists (a restart happened).
        public static let unknownTunnel = Reason(code: 2)
        /// The certificate does not belong to the site name in the hello.
        public static let wrongIdentity = Reason(code: 3)
        public static let tooManyLinks = Reason(code: 4)
        public static let shuttingDown = Reason(code: 5)
        public static let protocolViolation = Reason(code: 6)

        public var description: String {
            switch self {
            case .unsupportedVersion: "unsupported version"
            case .unknownTunnel: "unknown tunnel"
            case .wrongIdentity: "wrong identity"
            case .tooManyLinks: "too many links"
            case .shuttingDown: "shutting down"
            case .protocolViolation: "protocol violation"
            default: "reason \(code)"
            }
        }
    }

    public var reason: Reason
    public var message: String

    public init(reason: Reason, message: String) {
        self.reason = reason
        self.message = message
    }
}

/// Opens stream `streamID` to `appName` (and, for range apps, `target` such as `tcp:10.0.2.7:5900`).
public struct StreamOpen: Hashable, Sendable {
    public var streamID: UInt32
    public var appName: String
    public var target: String?
    /// Bytes the opener is ready to receive before the first window update.
    public var initialWindow: UInt32
    /// The client's address (flags bit 0), sent only to a peer whose links said
    /// `LinkHello.streamOrigins`: an older parser refuses the extra bytes.
    public var origin: StreamOrigin?
    /// The stream carries datagrams (flags bit 1): a UDP client's, for a UDP app, each framed
    /// by `DatagramFrameSerializer`. Sent only to a peer whose links said `LinkHello.datagramStreams`.
    public var datagrams: Bool

    public init(
        streamID: UInt32, appName: String, target: String? = nil, initialWindow: UInt32, origin: StreamOrigin? = nil,
        datagrams: Bool = false
    ) {
        self.streamID = streamID
        self.appName = appName
        self.target = target
        self.initialWindow = initialWindow
        self.origin = origin
        self.datagrams = datagrams
    }
}

/// Stream bytes at `offset`.
public struct StreamData: Hashable, Sendable {
    public var streamID: UInt32
    public var offset: UInt64
    public var fin: Bool
    public var data: ByteBuffer

    public init(streamID: UInt32, offset: UInt64, fin: Bool, data: ByteBuffer) {
        self.streamID = streamID
        self.offset = offset
        self.fin = fin
        self.data = data
    }
}

/// Ends a stream, with a code the far end's client or app sees as a reason.
public struct StreamReset: Hashable, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }

        public static let cancelled = Code(rawValue: 0)
        /// No app of that name is exposed.
        public static let notExposed = Code(rawValue: 1)
        /// The range app's target is outside its address or port range.
        public static let targetOutOfRange = Code(rawValue: 2)
        /// The app did not accept the connection.
        public static let appDown = Code(rawValue: 3)
        /// A limit (streams, memory) was reached.
        public static let limitReached = Code(rawValue: 4)
        /// The peer broke the protocol on this stream.
        public static let protocolError = Code(rawValue: 5)
        /// The tunnel was lost for longer than it may be.
        public static let tunnelLost = Code(rawValue: 6)
        /// The app is exposed, but not to the site that asked (`allowedSites`).
        public static let notAllowed = Code(rawValue: 7)
        /// A relayed link was asked of a site that does not relay (`tunnel.relay` is off).
        public static let relayNotOffered = Code(rawValue: 8)
        /// The relay has no direct tunnel to the site asked for (unknown, itself, the asker, or
        /// not connected).
        public static let relayNoPath = Code(rawValue: 9)
        /// A relayed link would ride on another relayed link.
        public static let relayLoop = Code(rawValue: 10)

        public var description: String {
            switch self {
            case .cancelled: "cancelled"
            case .notExposed: "app not exposed"
            case .targetOutOfRange: "target outside the app's range"
            case .appDown: "app not reachable"
            case .limitReached: "limit reached"
            case .protocolError: "protocol error"
            case .tunnelLost: "tunnel lost"
            case .notAllowed: "not allowed for this site"
            case .relayNotOffered: "this site does not relay"
            case .relayNoPath: "no direct tunnel to that site"
            case .relayLoop: "a relayed link may not ride on another"
            default: "code \(rawValue)"
            }
        }
    }

    public var streamID: UInt32
    public var code: Code
    /// How many bytes of the stream the sender of the reset had sent: the receiver counts them
    /// against the tunnel's credit even if some never arrive, so both sides agree on it.
    public var finalSize: UInt64
    public var message: String

    public init(streamID: UInt32, code: Code, finalSize: UInt64 = 0, message: String = "") {
        self.streamID = streamID
        self.code = code
        self.finalSize = finalSize
        self.message = message
    }
}

/// The sender will accept stream bytes up to (not including) `limit`.
public struct WindowUpdate: Hashable, Sendable {
    /// 0 for the tunnel as a whole.
    public var streamID: UInt32
    public var limit: UInt64

    public init(streamID: UInt32, limit: UInt64) {
        self.streamID = streamID
        self.limit = limit
    }
}

/// Closing a link, or the whole tunnel, on purpose.
public struct Goodbye: Hashable, Sendable {
    /// True: the site is stopping; the tunnel ends. False: only this link closes.
    public var tunnel: Bool
    public var message: String

    public init(tunnel: Bool, message: String) {
        self.tunnel = tunnel
        self.message = message
    }
}
