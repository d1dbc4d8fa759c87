import NIOCore

/// Closes an accepted connection as soon as it is active: how a listener refuses one (over a
/// cap) from its child initializer. Closing the channel inside the initializer, before NIO has
/// registered it, is not reliable: the socket may stay open while registration fails.
public final class RefusedConnectionHandler: ChannelInboundHandler {
    public typealias InboundIn = NIOAny

    public init() {}

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { context.close(promise: nil) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension RefusedConnectionHandler: Sendable {}
