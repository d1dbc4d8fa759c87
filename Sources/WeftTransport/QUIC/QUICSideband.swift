import NIOConcurrencyHelpers
import NIOCore
import WeftWire

/// The datagrams on a QUIC socket that are not QUIC: STUN answers and hole-punching probes.
/// They must leave from the very socket the links use — a NAT maps that socket's address, and
/// only that one — so they share it with the QUIC connections instead of opening another.
///
/// STUN messages and weft's probes never set the QUIC "fixed bit" (0x40) of their first byte,
/// and carry their marks: STUN its magic cookie at bytes 4–7, a probe its 4-byte prefix. QUIC
/// packets may clear that bit too (ngtcp2 always accepts RFC 9287's greasing, so its peers
/// grease), so the marks decide; a QUIC packet that matched one by chance (2^-32) is one lost
/// packet, which QUIC recovers. Whatever arrives here costs its handler a look, nothing else.
public final class QUICSideband: Sendable {
    /// The first byte of a sideband datagram is below this.
    static let firstByteLimit: UInt8 = 0x40

    /// Whether a datagram is the sideband's: a STUN message or a probe, by their marks.
    static func claims(_ datagram: UnsafeRawBufferPointer) -> Bool {
        guard datagram.count >= 4, datagram[0] < firstByteLimit else { return false }
        let prefix = PunchProbe.prefix
        if datagram[0] == prefix[0], datagram[1] == prefix[1], datagram[2] == prefix[2], datagram[3] == prefix[3] {
            return true
        }
        guard datagram.count >= StunBinding.headerLength else { return false }
        let cookie = StunBinding.magicCookie
        return datagram[4] == UInt8(truncatingIfNeeded: cookie >> 24)
            && datagram[5] == UInt8(truncatingIfNeeded: cookie >> 16)
            && datagram[6] == UInt8(truncatingIfNeeded: cookie >> 8) && datagram[7] == UInt8(truncatingIfNeeded: cookie)
    }

    private let endpoint: NIOLoopBound<QUICEndpoint>
    private let handler = NIOLockedValueBox<(@Sendable (ByteBuffer, SocketAddress) -> Void)?>(nil)
    /// The socket's own address.
    public let localAddress: SocketAddress?

    init(endpoint: NIOLoopBound<QUICEndpoint>, localAddress: SocketAddress?) {
        self.endpoint = endpoint
        self.localAddress = localAddress
    }

    public var eventLoop: EventLoop { endpoint.eventLoop }

    /// Whoever takes the socket's non-QUIC datagrams (one at a time; called on `eventLoop`).
    public func setHandler(_ handler: (@Sendable (ByteBuffer, SocketAddress) -> Void)?) {
        self.handler.withLockedValue { $0 = handler }
    }

    /// Sends one datagram from the QUIC socket. It must not look like QUIC (its first byte below
    /// 0x40), so a peer's socket hands it to its own sideband.
    public func send(_ datagram: ByteBuffer, to remote: SocketAddress) {
        precondition(
            datagram.readableBytes > 0
                && datagram.getInteger(at: datagram.readerIndex, as: UInt8.self)! < Self.firstByteLimit,
            "a sideband datagram must not look like QUIC")
        if endpoint.eventLoop.inEventLoop {
            endpoint.value.sendSideband(datagram, to: remote)
        } else {
            endpoint.eventLoop.execute { [endpoint] in endpoint.value.sendSideband(datagram, to: remote) }
        }
    }

    /// Hands a datagram that is not QUIC to the handler. Returns whether anybody took it.
    func received(_ datagram: UnsafeRawBufferPointer, from remote: SocketAddress, allocator: ByteBufferAllocator)
        -> Bool
    {
        guard let handler = handler.withLockedValue({ $0 }) else { return false }
        var buffer = allocator.buffer(capacity: datagram.count)
        buffer.writeBytes(datagram)
        handler(buffer, remote)
        return true
    }
}
