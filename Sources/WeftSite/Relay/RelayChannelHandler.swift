import NIOCore

/// Sits on an app's socket and hands what happens there to its `StreamRelay`.
///
/// Not `Sendable`: it lives on the socket's event loop; the relay hops the events to the
/// tunnel's loop.
final class RelayChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let relay: StreamRelay
    private var closedReported = false

    init(relay: StreamRelay) {
        self.relay = relay
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        relay.appRead(unwrapInboundIn(data))
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { relay.appWritable() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            relay.appInputClosed()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        reportClosed("the app's socket closed", clean: true)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        reportClosed("app socket error: \(error)", clean: false)
        context.close(promise: nil)
    }

    private func reportClosed(_ reason: String, clean: Bool) {
        guard !closedReported else { return }
        closedReported = true
        relay.appClosed(reason, clean: clean)
    }
}

@available(*, unavailable)
extension RelayChannelHandler: Sendable {}
