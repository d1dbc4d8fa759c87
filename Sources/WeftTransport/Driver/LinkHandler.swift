import NIOCore
import WeftTunnel

/// The last handler of an established link: hands the link's bytes, its writability and its
/// end to the driver.
///
/// A link the peer dialed may live on another event loop than its tunnel's driver, and its
/// bytes then hop there as tasks. The hop is bounded: past `hopBudget` bytes handed over and
/// not yet taken in by the engine, the link stops reading until the driver catches up. A peer
/// that floods one link therefore waits in its own TCP window; it cannot queue unbounded work
/// (and memory) on the driver's loop, nor starve the other tunnels that loop serves.
final class LinkHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Bytes a link on another loop may have on their way to the driver.
    static let hopBudget = 256 << 10

    private let driver: TunnelDriver
    private let id: LinkID
    /// Bytes handed to a driver on another loop and not yet taken in.
    private var hopping = 0
    /// A read asked for while the hop was over budget: issued once it drains.
    private var readHeld = false
    private var context: ChannelHandlerContext?

    init(driver: TunnelDriver, id: LinkID) {
        self.driver = driver
        self.id = id
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard driver.eventLoop !== context.eventLoop else {
            driver.linkReceived(bytes, on: id)
            return
        }
        let count = bytes.readableBytes
        hopping += count
        let loop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: loop)
        driver.linkReceived(bytes, on: id) {
            loop.execute { handler.value.taken(count) }
        }
    }

    func read(context: ChannelHandlerContext) {
        if hopping > Self.hopBudget {
            readHeld = true
        } else {
            context.read()
        }
    }

    /// The driver took `count` hopped bytes in.
    private func taken(_ count: Int) {
        hopping -= count
        guard readHeld, hopping <= Self.hopBudget / 2, let context else { return }
        readHeld = false
        context.read()
    }

    /// The link's outbound buffer crossed a water mark: the engine stops (or resumes) giving it
    /// frames, so a peer that does not read cannot grow it.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        driver.linkWritabilityChanged(id)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        driver.linkClosed(id)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        driver.linkFailed(id, error: error)
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension LinkHandler: Sendable {}
