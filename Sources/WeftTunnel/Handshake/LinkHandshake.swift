import NIOCore
import WeftWire

/// The first exchange on a new link, after TLS: `hello` from the dialing side, then `welcome`
/// or `refuse` from the accepting side. A value-type state machine: the driver feeds it bytes
/// and carries out the actions it returns; it touches no socket and no clock.
///
/// Incarnations here are per tunnel: each side picks a random one when it creates its half of
/// a tunnel, and the tunnel id is both of them. A dialer with a new tunnel does not know the
/// peer's yet and names it as `unknownIncarnation`; the welcome tells it. So a side that lost
/// its tunnel (restart, or a tunnel that failed) always starts a new one that the other side
/// can tell apart from the old, and a link never carries data into the wrong tunnel.
///
/// The accepting side checks what it can on its own (version, a consistent tunnel id, not
/// talking to itself) and refuses with a reason; what needs the node's state (is this site's
/// certificate the one it announced, which tunnel, too many links) is asked of the driver
/// through `.decide`, answered with `accept(incarnation:)` or `refuse(_:message:)`.
public struct LinkHandshake: Sendable {
    public enum Role: Sendable, Equatable {
        /// Dials `peerSite`, whose half of the tunnel is `peerIncarnation` (or
        /// `unknownIncarnation` for a new tunnel), for the link `linkID`.
        case dialer(peerSite: String, peerIncarnation: UInt64, linkID: UInt32)
        case acceptor
    }

    /// A dialer's name for the peer's half of a tunnel it has just created.
    public static let unknownIncarnation: UInt64 = 0

    /// The acceptor's half of the tunnel a hello asks to join (`unknownIncarnation`: a new one),
    /// or nil when the tunnel id does not hold the dialer's own incarnation.
    public static func requestedIncarnation(in hello: LinkHello, acceptor siteName: String) -> UInt64? {
        guard hello.tunnelID.count == LinkHello.tunnelIDLength else { return nil }
        var first: UInt64 = 0
        var second: UInt64 = 0
        for index in 0..<8 {
            first = first << 8 | UInt64(hello.tunnelID[index])
            second = second << 8 | UInt64(hello.tunnelID[8 + index])
        }
        let (mine, theirs) = siteName < hello.siteName ? (first, second) : (second, first)
        return theirs == hello.incarnation ? mine : nil
    }

    /// A finished handshake: which tunnel the link belongs to.
    public struct Established: Sendable, Equatable {
        public var peerSite: String
        public var peerIncarnation: UInt64
        /// This side's half of the tunnel.
        public var localIncarnation: UInt64
        public var tunnelID: TunnelID
        public var version: UInt16
        /// The dialer's number for the link (its own bookkeeping; logs show it).
        public var linkID: UInt32
        /// Tunnel frames that arrived behind the handshake.
        public var leftover: ByteBuffer
        /// Either end marked the link a backup path (`LinkHello.backupLink`).
        public var backup: Bool = false
        /// What the peer's hello or welcome said it understands (`LinkHello` bits).
        public var peerCapabilities: UInt32 = 0

        /// The peer understands `linkPolicy` frames (`LinkHello.linkPolicyFrames`).
        public var peerTakesPolicy: Bool { peerCapabilities & LinkHello.linkPolicyFrames != 0 }
    }

    public enum Action: Sendable, Equatable {
        case write(ByteBuffer)
        /// Acceptor only: a valid hello arrived; answer with `accept()` or `refuse(_:message:)`.
        case decide(LinkHello)
        case established(Established)
        /// The peer refused the link.
        case refused(LinkRefuse)
        /// The handshake failed here (bad bytes, wrong peer, timeout); close the link.
        case failed(String)
    }

    private enum State: Sendable {
        case idle
        case awaitingHello
        case awaitingWelcome
        case deciding(LinkHello)
        case done
    }

    public let role: Role
    public let siteName: String
    /// The dialer's half of its tunnel (an acceptor learns its half in `accept(incarnation:)`).
    public let incarnation: UInt64
    /// This end of the link is a backup path (said in the hello or the welcome).
    public let backup: Bool
    private var state: State = .idle
    private var parser = TunnelFrameParser(limits: Self.limits)
    private let serializer = TunnelFrameSerializer()

    /// Handshake frames are small; nothing bigger is read before the peer is known.
    public static let limits = TunnelFrameLimits(maxPayload: 1024, maxDataChunk: 0)

    public init(role: Role, siteName: String, incarnation: UInt64, backup: Bool = false) {
        self.backup = backup
        self.role = role
        self.siteName = siteName
        self.incarnation = incarnation
    }

    /// What this end says in its hello or welcome.
    private var ownCapabilities: UInt32 {
        LinkHello.linkPolicyFrames | LinkHello.streamOrigins | LinkHello.datagramStreams
            | (backup ? LinkHello.backupLink : 0)
    }

    /// Whether the handshake has ended (either way).
    public var isFinished: Bool {
        if case .done = state { return true }
        return false
    }

    /// Starts: the dialer sends its hello; the acceptor waits for one.
    public mutating func start() -> [Action] {
        guard case .idle = state else { return [] }
        switch role {
        case .acceptor:
            state = .awaitingHello
            return []
        case .dialer(let peerSite, let peerIncarnation, let linkID):
            state = .awaitingWelcome
            let hello = LinkHello(
                minVersion: WireProtocol.version,
                maxVersion: WireProtocol.version,
                siteName: siteName,
                incarnation: incarnation,
                tunnelID: TunnelID(
                    localSite: siteName, localIncarnation: incarnation, peerSite: peerSite,
                    peerIncarnation: peerIncarnation
                ).bytes,
                linkID: linkID,
                capabilities: ownCapabilities
            )
            return [.write(frame(.hello(hello)))]
        }
    }

    public mutating func received(_ bytes: ByteBuffer) -> [Action] {
        switch state {
        case .awaitingHello, .awaitingWelcome: break
        case .idle, .deciding:
            // Bytes behind a hello, before the decision: kept for the tunnel.
            parser.append(bytes)
            return []
        case .done: return []
        }
        parser.append(bytes)
        let next: TunnelFrame?
        do {
            next = try parser.nextFrame()
        } catch {
            return fail("malformed handshake: \(error)")
        }
        guard let next else { return [] }
        switch (state, next) {
        case (.awaitingHello, .hello(let hello)):
            return receiveHello(hello)
        case (.awaitingWelcome, .welcome(let welcome)):
            return receiveWelcome(welcome)
        case (.awaitingWelcome, .refuse(let refuse)):
            state = .done
            return [.refused(refuse)]
        default:
            return fail("expected \(role == .acceptor ? "a hello" : "a welcome"), got another frame")
        }
    }

    private mutating func receiveHello(_ hello: LinkHello) -> [Action] {
        guard hello.minVersion <= WireProtocol.version && WireProtocol.version <= hello.maxVersion else {
            return refuse(
                .unsupportedVersion,
                message:
                    "this site speaks version \(WireProtocol.version), not \(hello.minVersion)...\(hello.maxVersion)"
            )
        }
        guard hello.siteName != siteName else {
            return refuse(.protocolViolation, message: "a site cannot link to itself (\(siteName))")
        }
        guard hello.incarnation != Self.unknownIncarnation,
            Self.requestedIncarnation(in: hello, acceptor: siteName) != nil
        else {
            return refuse(.protocolViolation, message: "the tunnel id does not hold the hello's incarnation")
        }
        state = .deciding(hello)
        return [.decide(hello)]
    }

    private mutating func receiveWelcome(_ welcome: LinkWelcome) -> [Action] {
        guard case .dialer(let peerSite, let peerIncarnation, let linkID) = role else { return fail("not a dialer") }
        guard welcome.version == WireProtocol.version else {
            return fail("the peer chose version \(welcome.version), which this site does not speak")
        }
        guard welcome.siteName == peerSite, welcome.incarnation != Self.unknownIncarnation,
            peerIncarnation == Self.unknownIncarnation || welcome.incarnation == peerIncarnation
        else {
            let expected =
                peerIncarnation == Self.unknownIncarnation ? "a half other than 0" : "half \(peerIncarnation)"
            return fail(
                "welcomed by \(welcome.siteName) (half \(welcome.incarnation)), expected \(peerSite) (\(expected))")
        }
        state = .done
        let established = Established(
            peerSite: peerSite,
            peerIncarnation: welcome.incarnation,
            localIncarnation: incarnation,
            tunnelID: TunnelID(
                localSite: siteName, localIncarnation: incarnation, peerSite: peerSite,
                peerIncarnation: welcome.incarnation
            ),
            version: welcome.version,
            linkID: linkID,
            leftover: parser.takeBuffered(),
            backup: backup || welcome.capabilities & LinkHello.backupLink != 0,
            peerCapabilities: welcome.capabilities
        )
        return [.established(established)]
    }

    /// Acceptor: the hello is acceptable; the link joins this side's half `incarnation` of the
    /// tunnel. A hello that asked for another half is refused
    /// (`unknownTunnel`): that tunnel is gone here, and the dialer starts a new one.
    public mutating func accept(incarnation own: UInt64) -> [Action] {
        guard case .deciding(let hello) = state else { return [] }
        let requested = Self.requestedIncarnation(in: hello, acceptor: siteName)
        guard own != Self.unknownIncarnation, requested == Self.unknownIncarnation || requested == own else {
            return refuse(
                .unknownTunnel,
                message: "\(siteName) has no tunnel \(requested ?? 0) (it restarted or closed it); start a new one")
        }
        state = .done
        let welcome = LinkWelcome(
            version: WireProtocol.version, siteName: siteName, incarnation: own,
            capabilities: ownCapabilities)
        let established = Established(
            peerSite: hello.siteName,
            peerIncarnation: hello.incarnation,
            localIncarnation: own,
            tunnelID: TunnelID(
                localSite: siteName, localIncarnation: own, peerSite: hello.siteName, peerIncarnation: hello.incarnation
            ),
            version: WireProtocol.version,
            linkID: hello.linkID,
            leftover: parser.takeBuffered(),
            backup: backup || hello.capabilities & LinkHello.backupLink != 0,
            peerCapabilities: hello.capabilities
        )
        return [.write(frame(.welcome(welcome))), .established(established)]
    }

    /// Acceptor: refuses the link with a reason the peer logs.
    public mutating func refuse(_ reason: LinkRefuse.Reason, message: String) -> [Action] {
        guard role == .acceptor, !isFinished else { return [] }
        state = .done
        return [
            .write(frame(.refuse(LinkRefuse(reason: reason, message: message)))),
            .failed("refused the peer: \(reason): \(message)"),
        ]
    }

    /// The driver's handshake timer fired first.
    public mutating func timedOut() -> [Action] {
        guard !isFinished else { return [] }
        return fail("no handshake in time")
    }

    private mutating func fail(_ reason: String) -> [Action] {
        state = .done
        return [.failed(reason)]
    }

    private func frame(_ frame: TunnelFrame) -> ByteBuffer {
        var buffer = ByteBuffer()
        serializer.serialize(frame, into: &buffer)
        return buffer
    }
}
