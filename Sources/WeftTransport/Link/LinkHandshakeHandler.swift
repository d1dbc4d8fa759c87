import Logging
import NIOCore
import WeftTunnel
import WeftWire

/// What the node answers to a valid hello (acceptor side).
public enum LinkDecision: Sendable {
    /// Join the link to this side's half `incarnation` of the tunnel.
    case acceptInto(incarnation: UInt64)
    case refuse(LinkRefuse.Reason, String)
}

/// Runs `LinkHandshake` on a new link, right behind TLS. When it succeeds it calls
/// `onEstablished` at once, on the channel's event loop, so the tunnel's handler is in the
/// pipeline before the next read; then it completes `result` and passes bytes through untouched.
///
/// The timer starts when the handler is added, so it covers TLS and the handshake together: a
/// connection that does not finish both in time is closed.
final class LinkHandshakeHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var machine: LinkHandshake
    private let timeout: TimeAmount
    private let decide: (LinkHello) -> LinkDecision
    private let result: EventLoopPromise<LinkHandshake.Established>
    private let onEstablished: (Channel, LinkHandshake.Established) -> Void
    /// Dialer: asked once the connection is up, before the hello; false drops the link (what it
    /// was dialed for has gone while it connected).
    private let stillWanted: (() -> Bool)?
    private var started = false
    private var timeoutTask: Scheduled<Void>?
    private var finished = false

    init(
        machine: LinkHandshake,
        timeout: TimeAmount,
        result: EventLoopPromise<LinkHandshake.Established>,
        decide: @escaping (LinkHello) -> LinkDecision = { _ in .refuse(.protocolViolation, "this side dials") },
        stillWanted: (() -> Bool)? = nil,
        onEstablished: @escaping (Channel, LinkHandshake.Established) -> Void
    ) {
        self.onEstablished = onEstablished
        self.stillWanted = stillWanted
        self.machine = machine
        self.timeout = timeout
        self.result = result
        self.decide = decide
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timeoutTask = context.eventLoop.scheduleTask(in: timeout) {
            let (handler, context) = loopBound.value
            handler.perform(handler.machine.timedOut(), context: context, timedOut: true)
        }
        if context.channel.isActive { start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        if let stillWanted, !stillWanted() {
            fail(LinkError(.closed, "no longer wanted: its tunnel or path changed while it connected"))
            context.close(promise: nil)
            return
        }
        // NIOSSL holds writes until its own handshake is done.
        perform(machine.start(), context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !finished else {
            context.fireChannelRead(data)
            return
        }
        perform(machine.received(unwrapInboundIn(data)), context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(LinkError(.closed, "the connection closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard !finished else {
            context.fireErrorCaught(error)
            return
        }
        fail(LinkError(.handshakeFailed, "\(error)"))
        context.close(promise: nil)
    }

    private func perform(_ actions: [LinkHandshake.Action], context: ChannelHandlerContext, timedOut: Bool = false) {
        var lastWrite: EventLoopFuture<Void>?
        for action in actions {
            switch action {
            case .write(let bytes):
                lastWrite = context.writeAndFlush(NIOAny(bytes))
            case .decide(let hello):
                switch decide(hello) {
                case .acceptInto(let incarnation): perform(machine.accept(incarnation: incarnation), context: context)
                case .refuse(let reason, let message):
                    perform(machine.refuse(reason, message: message), context: context)
                }
            case .established(let established):
                finished = true
                timeoutTask?.cancel()
                onEstablished(context.channel, established)
                result.succeed(established)
            case .refused(let refusal):
                fail(LinkError(.refused, "\(refusal.reason): \(refusal.message)", refusal: refusal))
                context.close(promise: nil)
            case .failed(let reason):
                fail(LinkError(timedOut ? .handshakeTimeout : .handshakeFailed, reason))
                if let lastWrite {
                    // Let the refusal written just before leave first (bounded: a peer that does
                    // not read is closed anyway).
                    let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                    lastWrite.whenComplete { _ in loopBound.value.close(promise: nil) }
                    context.eventLoop.scheduleTask(in: .seconds(1)) { loopBound.value.close(promise: nil) }
                } else {
                    // Nothing to say (a timeout, perhaps before TLS finished): close at once.
                    context.close(promise: nil)
                }
            }
        }
    }

    private func fail(_ error: LinkError) {
        guard !finished else { return }
        finished = true
        timeoutTask?.cancel()
        result.fail(error)
    }
}

@available(*, unavailable)
extension LinkHandshakeHandler: Sendable {}
