import Foundation
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import NIOSOCKS

/// Opens a TCP byte stream to a host and port for a TCP-based transport: directly (with the
/// link socket options, from a local address if given) or through the site's proxy. The future
/// succeeds once bytes written reach the target.
enum StreamConnector {
    static func connect(
        host: String, port: Int, from local: SocketAddress?, context: LinkTransportContext, on eventLoop: EventLoop,
        timeout: TimeAmount
    ) -> EventLoopFuture<Channel> {
        let congestion = context.congestionControl
        var bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in LinkSocketOptions.apply(to: channel, congestionControl: congestion) }
        if let local { bootstrap = bootstrap.bind(to: local) }
        guard let proxy = context.proxy else {
            let connected: EventLoopFuture<Channel>
            if let address = try? SocketAddress(ipAddress: host, port: port) {
                connected = bootstrap.connect(to: address)
            } else {
                connected = bootstrap.connect(host: host, port: port)
            }
            return connected.flatMapThrowing { channel in
                if let remote = channel.remoteAddress, let reason = context.refuse(remote) {
                    channel.close(promise: nil)
                    throw LinkError(.transport, "\(host) resolved to \(remote), which is not dialed: \(reason)")
                }
                return channel
            }
        }
        let deadline = NIODeadline.now() + timeout
        return bootstrap.connect(host: proxy.host, port: proxy.port).flatMap { channel in
            let established = channel.eventLoop.makePromise(of: Void.self)
            do {
                switch proxy.kind {
                case .http:
                    try addHTTPConnect(
                        to: channel, proxy: proxy, host: host, port: port, deadline: deadline,
                        established: established)
                case .socks5:
                    try addSOCKS(to: channel, host: host, port: port, established: established)
                }
            } catch {
                established.fail(error)
            }
            let timer = channel.eventLoop.scheduleTask(deadline: deadline) {
                established.fail(LinkError(.transport, "the proxy \(proxy) did not connect in time"))
            }
            channel.closeFuture.whenComplete { _ in
                established.fail(LinkError(.transport, "the proxy \(proxy) closed the connection"))
            }
            // The proxy's handlers leave once the exchange is over; the response decoder only
            // after its decode loop ends. The stream is handed on in a later tick, when none is
            // left to see the link's first bytes.
            return established.futureResult.flatMap {
                timer.cancel()
                let handedOn = channel.eventLoop.makePromise(of: Channel.self)
                channel.eventLoop.execute { handedOn.succeed(channel) }
                return handedOn.futureResult
            }.flatMapErrorThrowing { error in
                timer.cancel()
                channel.close(promise: nil)
                throw error
            }
        }
    }

    private static func addHTTPConnect(
        to channel: Channel, proxy: LinkProxy, host: String, port: Int, deadline: NIODeadline,
        established: EventLoopPromise<Void>
    ) throws {
        var headers = HTTPHeaders()
        if let user = proxy.username {
            let token = Data("\(user):\(proxy.password ?? "")".utf8).base64EncodedString()
            headers.add(name: "Proxy-Authorization", value: "Basic \(token)")
        }
        let encoder = HTTPRequestEncoder()
        let decoder = ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes))
        let connect = NIOHTTP1ProxyConnectHandler(
            targetHost: host, targetPort: port, headers: headers, deadline: deadline, promise: established)
        let operations = channel.pipeline.syncOperations
        try operations.addHandler(encoder)
        try operations.addHandler(decoder)
        try operations.addHandler(connect)
        // The HTTP handlers leave once the tunnel through the proxy is up.
        let handlers = NIOLoopBound((connect, decoder, encoder), eventLoop: channel.eventLoop)
        established.futureResult.whenSuccess {
            let operations = channel.pipeline.syncOperations
            operations.removeHandler(handlers.value.0, promise: nil)
            operations.removeHandler(handlers.value.1, promise: nil)
            operations.removeHandler(handlers.value.2, promise: nil)
        }
    }

    private static func addSOCKS(
        to channel: Channel, host: String, port: Int, established: EventLoopPromise<Void>
    ) throws {
        let target: SOCKSAddress =
            if let address = try? SocketAddress(ipAddress: host, port: port) {
                .address(address)
            } else {
                .domain(host, port: port)
            }
        let socks = SOCKSClientHandler(targetAddress: target)
        let watcher = SOCKSEstablishedWatcher(established: established)
        let operations = channel.pipeline.syncOperations
        try operations.addHandler(socks)
        try operations.addHandler(watcher)
        let handlers = NIOLoopBound((watcher, socks), eventLoop: channel.eventLoop)
        established.futureResult.whenSuccess {
            let operations = channel.pipeline.syncOperations
            operations.removeHandler(handlers.value.0, promise: nil)
            operations.removeHandler(handlers.value.1, promise: nil)
        }
    }
}

/// Completes `established` when NIOSOCKS reports the proxied connection, or fails it on error.
private final class SOCKSEstablishedWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let established: EventLoopPromise<Void>

    init(established: EventLoopPromise<Void>) {
        self.established = established
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is SOCKSProxyEstablishedEvent {
            established.succeed()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        established.fail(LinkError(.transport, "the SOCKS5 proxy refused: \(error)"))
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension SOCKSEstablishedWatcher: Sendable {}
