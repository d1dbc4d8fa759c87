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
        vetted(host: host, port: port, context: context, on: eventLoop).flatMap { address in
            open(address, from: local, context: context, on: eventLoop, timeout: timeout)
        }
    }

    /// The address to reach: an IP literal as it is (the planner checked it), a host name
    /// resolved here, and its first address the endpoint policy allows; a name that leads
    /// nowhere allowed fails before any connection is made.
    static func vetted(
        host: String, port: Int, context: LinkTransportContext, on eventLoop: EventLoop
    ) -> EventLoopFuture<SocketAddress> {
        if let literal = try? SocketAddress(ipAddress: host, port: port) {
            return eventLoop.makeSucceededFuture(literal)
        }
        return HostResolver.resolve(host, port: port, on: eventLoop).flatMapThrowing { addresses in
            guard !addresses.isEmpty else { throw LinkError(.transport, "\(host) does not resolve") }
            var refusals: [String] = []
            for address in addresses {
                guard let reason = context.refuse(address) else { return address }
                refusals.append("\(address.ipAddress ?? "?"): \(reason)")
            }
            throw LinkError(
                .transport,
                "\(host) resolves only to addresses this site does not dial (\(refusals.joined(separator: "; ")))")
        }
    }

    private static func open(
        _ address: SocketAddress, from local: SocketAddress?, context: LinkTransportContext, on eventLoop: EventLoop,
        timeout: TimeAmount
    ) -> EventLoopFuture<Channel> {
        let congestion = context.congestionControl
        var bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in LinkSocketOptions.apply(to: channel, congestionControl: congestion) }
        if let local { bootstrap = bootstrap.bind(to: local) }
        guard let proxy = context.proxy else { return bootstrap.connect(to: address) }
        let deadline = NIODeadline.now() + timeout
        return bootstrap.connect(host: proxy.host, port: proxy.port).flatMap { channel in
            let established = channel.eventLoop.makePromise(of: Void.self)
            do {
                switch proxy.kind {
                case .http:
                    try addHTTPConnect(
                        to: channel, proxy: proxy, target: address, deadline: deadline,
                        established: established)
                case .socks5:
                    try addSOCKS(to: channel, target: address, established: established)
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
        to channel: Channel, proxy: LinkProxy, target: SocketAddress, deadline: NIODeadline,
        established: EventLoopPromise<Void>
    ) throws {
        let ip = target.ipAddress ?? "?"
        // An IPv6 literal in an authority is bracketed (NIOExtras writes HOST:PORT as given).
        let host = ip.contains(":") ? "[\(ip)]" : ip
        let port = target.port ?? 0
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
        to channel: Channel, target: SocketAddress, established: EventLoopPromise<Void>
    ) throws {
        let socks = SOCKSClientHandler(targetAddress: .address(target))
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
