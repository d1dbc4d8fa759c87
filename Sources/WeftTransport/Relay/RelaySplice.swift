import NIOConcurrencyHelpers
import NIOCore
import WeftTunnel
import WeftWire

/// A relay's part in a relayed link: the stream the asking site opened and a new stream on the
/// relay's tunnel to the far site, joined so that what one carries goes out on the other. The
/// relay sees only the link's TLS records. Backpressure runs through, in bytes: a side reads
/// only while the other side is writable and less than `SpliceGate.limit` of its bytes are on
/// their way there (the two streams may live on different event loops); a side that stops
/// reading stops its stream's credit, which stops the far sender. A reset on one side resets
/// the other with the same code, so the dialer learns why.
public enum RelaySplice {
    /// Joins `stream`, opened on `asker` (the tunnel from the asking site), with a new
    /// `RelayProtocol.delivery` stream on `onward` (the tunnel to the far site). Return the
    /// result from `asker`'s `onIncomingStream`. `carried` counts the bytes relayed (both
    /// ways); `ended` runs once, when the asker's stream is gone.
    public static func join(
        _ stream: StreamID, from asker: TunnelDriver, to onward: TunnelDriver,
        carried: @escaping @Sendable (Int) -> Void, ended: @escaping @Sendable () -> Void
    ) -> TunnelStreamDelegate {
        asker.eventLoop.preconditionInEventLoop()
        let inbound = TunnelStreamChannel.accepted(stream, on: asker)
        let askerName = asker.peerSite
        inbound.closeFuture.whenComplete { _ in ended() }
        // Each gate holds one side's reads.
        let inboundGate = SpliceGate()
        let outboundGate = SpliceGate()
        onward.eventLoop.execute {
            let outbound: TunnelStreamChannel
            do {
                outbound = try TunnelStreamChannel.open(
                    on: onward, appName: RelayProtocol.delivery, target: askerName
                ) { channel in
                    try channel.pipeline.syncOperations.addHandler(
                        SpliceHandler(
                            partner: inbound, ownGate: outboundGate, partnerGate: inboundGate, carried: carried))
                }
            } catch {
                asker.eventLoop.execute { inbound.refuse(.relayNoPath, "the far site's tunnel is gone") }
                return
            }
            asker.eventLoop.execute {
                do {
                    try inbound.activate { channel in
                        try channel.pipeline.syncOperations.addHandler(
                            SpliceHandler(
                                partner: outbound, ownGate: inboundGate, partnerGate: outboundGate, carried: carried))
                    }
                } catch {
                    outbound.eventLoop.execute { outbound.refuse(.cancelled, "the asking side is gone") }
                }
            }
        }
        return inbound
    }
}

/// Whether one side of a splice reads: only while the other side is writable and fewer than
/// `limit` of this side's bytes are on their way to it (with hysteresis). Updated from both
/// loops; the reader's autoRead follows it on the reader's own loop, latest state last.
final class SpliceGate: Sendable {
    static let limit = 1 << 20

    private struct State {
        var reader: Channel?
        var partnerWritable = true
        var inFlight = 0
        var reading = true
    }

    private let state = NIOLockedValueBox(State())

    /// The channel this gate holds (set once its handler is added).
    func attach(_ reader: Channel) {
        update { $0.reader = reader }
        apply(reader)
    }

    func partnerWritable(_ writable: Bool) { update { $0.partnerWritable = writable } }
    func sent(_ count: Int) { update { $0.inFlight += count } }
    func delivered(_ count: Int) { update { $0.inFlight -= count } }

    private func update(_ change: (inout State) -> Void) {
        let reader = state.withLockedValue { state -> Channel? in
            change(&state)
            let threshold = state.reading ? Self.limit : Self.limit / 2
            let reading = state.partnerWritable && state.inFlight < threshold
            guard reading != state.reading else { return nil }
            state.reading = reading
            return state.reader
        }
        if let reader { apply(reader) }
    }

    /// Sets the reader's autoRead to the gate's state as it is when this runs on its loop.
    private func apply(_ reader: Channel) {
        reader.eventLoop.execute {
            let reading = self.state.withLockedValue { $0.reading }
            reader.setOption(ChannelOptions.autoRead, value: reading).whenFailure { _ in }
        }
    }
}

/// Writes what its channel reads to the partner channel (which may live on another loop; its
/// writes stay in order), counting them through `ownGate` until the partner has them; reports
/// its own channel's writability to `partnerGate`, which holds the partner's reads.
private final class SpliceHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let partner: TunnelStreamChannel
    private let ownGate: SpliceGate
    private let partnerGate: SpliceGate
    private let carried: @Sendable (Int) -> Void

    init(
        partner: TunnelStreamChannel, ownGate: SpliceGate, partnerGate: SpliceGate,
        carried: @escaping @Sendable (Int) -> Void
    ) {
        self.partner = partner
        self.ownGate = ownGate
        self.partnerGate = partnerGate
        self.carried = carried
    }

    func handlerAdded(context: ChannelHandlerContext) {
        ownGate.attach(context.channel)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        let count = bytes.readableBytes
        carried(count)
        ownGate.sent(count)
        let gate = ownGate
        partner.writeAndFlush(bytes).whenComplete { _ in gate.delivered(count) }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        partnerGate.partnerWritable(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        let partner = self.partner
        if let reset = (context.channel as? TunnelStreamChannel)?.reset {
            // The far side's refusal (or loss) reaches the other end with its code.
            partner.eventLoop.execute { partner.refuse(reset.code, reset.message) }
        } else {
            // The partner sends what it was given, then finishes its stream too.
            partner.close(promise: nil)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
