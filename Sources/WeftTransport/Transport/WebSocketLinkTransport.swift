import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import WeftIdentity

/// Links inside WebSocket binary messages (HTTP/1.1 upgrade), so a site can sit behind a
/// reverse proxy (nginx, Caddy, a load balancer) that only forwards HTTP. The listener serves
/// the upgrade on `path`; the dialer speaks `ws://`, or `wss://` to a TLS-terminating proxy
/// (checked against the system's CAs plus the site's `caFile`). weft's own TLS runs inside the
/// messages either way: the proxy sees ciphertext only.
public struct WebSocketLinkTransport: LinkTransport {
    public let context: LinkTransportContext
    /// The path this site serves links on (a request for any other gets 404).
    public let path: String
    /// For `wss://` dials; a failure when this machine has no CA bundle and no `caFile` (a
    /// minimal system without ca-certificates), which only `wss://` dials then report.
    private let secureContext: Result<NIOSSLContext, LinkError>

    public init(context: LinkTransportContext = LinkTransportContext(), path: String = "/weft", caFile: String? = nil)
        throws
    {
        self.context = context
        self.path = path
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let caFile { configuration.additionalTrustRoots = [.file(caFile)] }
        configuration.applicationProtocols = ["http/1.1"]
        do {
            self.secureContext = .success(try NIOSSLContext(configuration: configuration))
        } catch {
            // The system's CAs cannot be loaded: the site's own caFile alone, if it has one
            // (a bad caFile still fails the site's start, as it should).
            guard let caFile else {
                self.secureContext = .failure(
                    LinkError(
                        .transport,
                        "wss:// cannot be dialed: this machine has no CA certificates (Debian: apt-get install "
                            + "ca-certificates) and tunnel.caFile is not set (\(error))"))
                return
            }
            configuration.trustRoots = .file(caFile)
            configuration.additionalTrustRoots = []
            self.secureContext = .success(try NIOSSLContext(configuration: configuration))
        }
    }

    public var kind: LinkEndpoint.Kind { .websocket }

    public func dial(
        _ endpoint: LinkEndpoint, from local: SocketAddress?, on eventLoop: EventLoop, timeout: TimeAmount,
        expecting expected: CertificateFingerprint,
        ready: @escaping @Sendable (Channel) throws -> Void
    ) -> EventLoopFuture<Channel> {
        let secureContext: NIOSSLContext?
        switch self.secureContext {
        case .success(let context): secureContext = context
        case .failure(let error):
            if endpoint.secure { return eventLoop.makeFailedFuture(error) }
            secureContext = nil
        }
        let literal = (try? SocketAddress(ipAddress: endpoint.host, port: 0)) != nil
        if endpoint.secure && literal && context.proxy != nil {
            // NIOSSL checks an IP literal against the connected address, which is the proxy's.
            return eventLoop.makeFailedFuture(
                LinkError(
                    .transport, "\(endpoint.url): wss:// to an IP address cannot go through a proxy; use a host name"))
        }
        return StreamConnector.connect(
            host: endpoint.host, port: endpoint.port, from: local, context: context, on: eventLoop, timeout: timeout
        ).flatMap { channel in
            let upgraded: EventLoopFuture<Bool>
            do {
                if endpoint.secure, let secureContext {
                    let hostname = literal ? nil : endpoint.host
                    try channel.pipeline.syncOperations.addHandler(
                        NIOSSLClientHandler(context: secureContext, serverHostname: hostname))
                }
                upgraded = try Self.requestUpgrade(on: channel, endpoint: endpoint)
            } catch {
                channel.close(promise: nil)
                return channel.eventLoop.makeFailedFuture(error)
            }
            let timer = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
            return upgraded.flatMapThrowing { accepted in
                timer.cancel()
                guard accepted else {
                    throw LinkError(.transport, "\(endpoint.url) did not upgrade to WebSocket")
                }
                try ready(channel)
                return channel
            }.flatMapErrorThrowing { error in
                timer.cancel()
                channel.close(promise: nil)
                if error is LinkError { throw error }
                throw LinkError(.transport, "WebSocket upgrade at \(endpoint.url) failed: \(error)")
            }
        }
    }

    private static func requestUpgrade(on channel: Channel, endpoint: LinkEndpoint) throws -> EventLoopFuture<Bool> {
        let host = endpoint.host.contains(":") ? "[\(endpoint.host)]" : endpoint.host
        let defaultPort = endpoint.secure ? 443 : 80
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: endpoint.port == defaultPort ? host : "\(host):\(endpoint.port)")
        headers.add(name: "User-Agent", value: "weft")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: endpoint.path, headers: headers)
        let upgrader = NIOTypedWebSocketClientUpgrader<Bool>(
            maxFrameSize: WebSocketLinkHandler.maxInboundFrame,
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(WebSocketLinkHandler(isClient: true))
                    return true
                }
            })
        var configuration = NIOUpgradableHTTPClientPipelineConfiguration(
            upgradeConfiguration: NIOTypedHTTPClientUpgradeConfiguration(
                upgradeRequestHead: head, upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in channel.eventLoop.makeSucceededFuture(false) }))
        configuration.leftOverBytesStrategy = .forwardBytes
        return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(configuration: configuration)
    }

    public func listen(
        host: String, port: Int, group: EventLoopGroup, timeout: TimeAmount,
        trusts: @escaping @Sendable (Channel, CertificateFingerprint) -> Bool,
        accept: @escaping @Sendable (Channel) -> Ready?
    ) -> EventLoopFuture<Channel> {
        let congestion = context.congestionControl
        let path = self.path
        return ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                guard let ready = accept(channel) else { return channel.close() }
                return LinkSocketOptions.apply(to: channel, congestionControl: congestion).flatMapThrowing {
                    let upgraded = try Self.serveUpgrade(on: channel, path: path)
                    // The upgrade counts against the handshake's time: a client that never
                    // finishes its request is closed.
                    let timer = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
                    upgraded.whenComplete { result in
                        switch result {
                        case .success(true):
                            timer.cancel()
                            do { try ready(channel) } catch { channel.close(promise: nil) }
                        case .success(false), .failure:
                            // Answered with an HTTP error (or failed): closed once the answer
                            // is out, or by the timer if the client does not read it.
                            break
                        }
                    }
                }
            }
            .bind(host: host, port: port)
    }

    private static func serveUpgrade(on channel: Channel, path: String) throws -> EventLoopFuture<Bool> {
        let upgrader = NIOTypedWebSocketServerUpgrader<Bool>(
            maxFrameSize: WebSocketLinkHandler.maxInboundFrame,
            shouldUpgrade: { channel, head in
                channel.eventLoop.makeSucceededFuture(Self.requestPath(head.uri) == path ? HTTPHeaders() : nil)
            },
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(WebSocketLinkHandler(isClient: false))
                    return true
                }
            })
        var configuration = NIOUpgradableHTTPServerPipelineConfiguration(
            upgradeConfiguration: NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(NotALinkResponder(path: path))
                        return false
                    }
                }))
        configuration.enablePipelining = false
        return try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: configuration)
    }

    /// The path of a request target, without its query.
    static func requestPath(_ uri: String) -> Substring {
        uri.prefix { $0 != "?" }
    }
}

/// Answers an HTTP request that is not a WebSocket upgrade on the link path: 426 on the path
/// (a browser, or a proxy that drops the upgrade headers), 404 elsewhere, then closes. An upgrade
/// request that was refused (another path) has had its head taken by NIO's upgrade handler: when
/// no head reaches this handler in the tick it is added, it answers 404.
private final class NotALinkResponder: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let path: String
    private var answered = false

    init(path: String) {
        self.path = path
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let (handler, context) = loopBound.value
            handler.answer(onPath: false, context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        answer(onPath: WebSocketLinkTransport.requestPath(head.uri) == path, context: context)
    }

    private func answer(onPath: Bool, context: ChannelHandlerContext) {
        guard !answered, context.channel.isActive else { return }
        answered = true
        let status: HTTPResponseStatus = onPath ? .upgradeRequired : .notFound
        let text = onPath ? "a weft link endpoint: WebSocket upgrade required\n" : "not found\n"
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain")
        headers.add(name: "Content-Length", value: "\(text.utf8.count)")
        headers.add(name: "Connection", value: "close")
        if onPath { headers.add(name: "Upgrade", value: "websocket") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in loopBound.value.close(promise: nil) }
    }
}

@available(*, unavailable)
extension NotALinkResponder: Sendable {}
