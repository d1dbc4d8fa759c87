import NIOCore
import WeftTunnel
import WeftWire

/// A relay's part in a relayed link: the stream the asking site opened and a new stream on the
/// relay's tunnel to the far site, joined so that what one carries goes out on the other. The
/// relay sees only the link's TLS records. Backpressure runs through: a side that cannot take
/// more stops the other side's reads, which stops its stream's credit.
public enum RelaySplice {
    /// Joins `stream`, opened on `asker` (the tunnel from the asking site), with a new
    /// `RelayProtocol.delivery` stream on `onward` (the tunnel to the far site). Return the
    /// result from `asker`'s `onIncomingStream`. `carried` counts the bytes relayed (both
    /// ways); `ended` runs once, when both streams are gone.
    public static func join(
        _ stream: StreamID, from asker: TunnelDriver, to onward: TunnelDriver,
        carried: @escaping @Sendable (Int) -> Void, ended: @escaping @Sendable () -> Void
    ) -> TunnelStreamDelegate {
        asker.eventLoop.preconditionInEventLoop()
        let inbound = TunnelStreamChannel.accepted(stream, on: asker)
        let askerName = asker.peerSite
        inbound.closeFuture.whenComplete { _ in ended() }
        onward.eventLoop.execute {
            let outbound: TunnelStreamChannel
            do {
                outbound = try TunnelStreamChannel.open(
                    on: onward, appName: RelayProtocol.delivery, target: askerName
                ) { channel in
                    try channel.pipeline.syncOperations.addHandler(SpliceHandler(partner: inbound, carried: carried))
                }
            } catch {
                asker.eventLoop.execute { inbound.refuse(.relayNoPath, "the far site's tunnel is gone") }
                return
            }
            asker.eventLoop.execute {
                do {
                    try inbound.activate { channel in
                        try channel.pipeline.syncOperations.addHandler(
                            SpliceHandler(partner: outbound, carried: carried))
                    }
                } catch {
                    outbound.close(promise: nil)
                }
            }
        }
        return inbound
    }
}

/// Writes what its channel reads to the partner channel (which may live on another loop; its
/// writes stay in order), and holds the partner's reads while its own channel is unwritable.
private final class SpliceHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let partner: Channel
    private let carried: @Sendable (Int) -> Void

    init(partner: Channel, carried: @escaping @Sendable (Int) -> Void) {
        self.partner = partner
        self.carried = carried
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        carried(bytes.readableBytes)
        partner.writeAndFlush(bytes, promise: nil)
    }

    /// This channel is where the partner's bytes go: while it cannot take more, the partner
    /// does not read (and its stream's credit stops the far sender).
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        partner.setOption(ChannelOptions.autoRead, value: context.channel.isWritable).whenFailure { _ in }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // The partner sends what it was given, then finishes its stream too.
        partner.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
