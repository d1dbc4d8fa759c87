import NIOCore
import NIOWebSocket

/// Carries a link's byte stream in WebSocket binary messages, once the HTTP upgrade is done:
/// bytes out become binary frames (masked from the client, as RFC 6455 requires), binary and
/// continuation frames in become bytes. Pings are answered; a close is answered and ends the
/// link; a text frame is a protocol violation and ends it too.
final class WebSocketLinkHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = WebSocketFrame

    /// Largest frame sent: a frame is buffered whole by proxies that inspect them.
    static let maxFramePayload = 64 << 10
    /// Largest frame accepted from the peer (the decoder's limit, held whole before anyone is
    /// authenticated): weft sends at most `maxFramePayload`, so twice that leaves a margin for a
    /// proxy that joins frames, and no more.
    static let maxInboundFrame = 2 * maxFramePayload

    private let masks: Bool
    private var closeSent = false

    /// `isClient`: this side dialed, and masks what it sends.
    init(isClient: Bool) {
        self.masks = isClient
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .binary, .continuation:
            let bytes = frame.unmaskedData
            if bytes.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(bytes)) }
        case .ping:
            guard !closeSent else { return }
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: maskKey(), data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .pong:
            break
        case .connectionClose:
            sendClose(context: context, code: .normalClosure)
        default:
            // Text or a reserved opcode: not a link.
            sendClose(context: context, code: .unacceptableData)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var bytes = unwrapOutboundIn(data)
        guard !closeSent else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        while bytes.readableBytes > Self.maxFramePayload {
            let slice = bytes.readSlice(length: Self.maxFramePayload)!
            context.write(
                wrapOutboundOut(WebSocketFrame(fin: true, opcode: .binary, maskKey: maskKey(), data: slice)),
                promise: nil)
        }
        context.write(
            wrapOutboundOut(WebSocketFrame(fin: true, opcode: .binary, maskKey: maskKey(), data: bytes)),
            promise: promise)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all, !closeSent, context.channel.isActive {
            // Say goodbye in WebSocket terms first, so a proxy in between ends its side cleanly.
            closeSent = true
            var reason = context.channel.allocator.buffer(capacity: 2)
            reason.write(webSocketErrorCode: .normalClosure)
            let frame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: maskKey(), data: reason)
            context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
        }
        context.close(mode: mode, promise: promise)
    }

    private func sendClose(context: ChannelHandlerContext, code: WebSocketErrorCode) {
        if !closeSent {
            closeSent = true
            var reason = context.channel.allocator.buffer(capacity: 2)
            reason.write(webSocketErrorCode: code)
            let frame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: maskKey(), data: reason)
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(frame)).whenComplete { _ in loopBound.value.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }

    private func maskKey() -> WebSocketMaskingKey? {
        masks ? .random() : nil
    }
}

@available(*, unavailable)
extension WebSocketLinkHandler: Sendable {}
