import NIOCore
import WeftTunnel

/// The last handler of an established link: hands the link's bytes, its writability and its
/// end to the driver.
final class LinkHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let driver: TunnelDriver
    private let id: LinkID

    init(driver: TunnelDriver, id: LinkID) {
        self.driver = driver
        self.id = id
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        driver.linkReceived(unwrapInboundIn(data), on: id)
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
