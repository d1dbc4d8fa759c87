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

    func handlerAdded(context: ChannelHandlerContext) {
        // Added after the socket may already have gone (a client that gave up waiting).
        if !context.channel.isActive { reportClosed("the app's socket closed before the stream opened") }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        relay.appRead(unwrapInboundIn(data))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            relay.appInputClosed()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        reportClosed("the app's socket closed")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        reportClosed("app socket error: \(error)")
        context.close(promise: nil)
    }

    private func reportClosed(_ reason: String) {
        guard !closedReported else { return }
        closedReported = true
        relay.appClosed(reason)
    }
}

@available(*, unavailable)
extension RelayChannelHandler: Sendable {}
