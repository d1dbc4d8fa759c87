import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import WeftTransport
import WeftWire

/// The local socket of one `remoteApps` entry: each client that connects becomes a stream to
/// the app at the other site.
///
/// A client that arrives while the tunnel has no link waits up to `connectTimeout` for one,
/// then is closed — never left hanging. A Unix socket's stale file is removed and its parent
/// directory created before binding.
public struct RemoteAppListener: Sendable {
    public let app: RemoteAppConfig
    public let channel: Channel

    public static func bind(
        _ app: RemoteAppConfig,
        manager: TunnelManager,
        connectTimeout: Duration,
        connections: ConnectionTracker? = nil,
        sockets: SocketBudget? = nil,
        logger: Logger
    ) async throws -> RemoteAppListener {
        let refusals = LogLimiter()
        var logger = logger
        logger[metadataKey: "peer"] = "\(app.siteName)"
        logger[metadataKey: "app"] = "\(app.appName)"
        let clientLogger = logger
        // Accepted clients on the peer's tunnel loop: their bytes then go to the links without
        // a hop between threads.
        let loop = manager.eventLoop(for: app.siteName)
        let bootstrap = ServerBootstrap(group: loop, childGroup: loop)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            // Bursts of clients (a pool opening hundreds at once) must not overflow the accept
            // queue: a dropped SYN costs the client a one-second retransmit.
            .serverChannelOption(ChannelOptions.backlog, value: 4096)
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .childChannelOption(ChannelOptions.autoRead, value: false)
            .childChannelInitializer { channel in
                if let sockets {
                    guard sockets.acquire() else {
                        Counter(
                            label: "weft_streams_refused_total",
                            dimensions: [("peer", app.siteName), ("reason", "sockets")]
                        )
                        .increment()
                        let (allowed, suppressed) = refusals.admit("sockets")
                        if allowed {
                            clientLogger.warning(
                                "refused a client: the site's stream sockets are all in use",
                                metadata: ["limit": "\(sockets.limit)", "alsoRefusedSinceLastLine": "\(suppressed)"])
                        }
                        return channel.close()
                    }
                    channel.closeFuture.whenComplete { _ in sockets.release() }
                }
                return channel.eventLoop.makeCompletedFuture {
                    connections?.add(channel, key: Self.key(app))
                    try channel.pipeline.syncOperations.addHandler(
                        ClientArrivalHandler(
                            app: app, manager: manager, connectTimeout: connectTimeout, refusals: refusals,
                            logger: clientLogger))
                }
            }
        let channel: Channel
        switch app.localSocket {
        case .udp(let address, let port):
            // No SO_REUSEADDR: for UDP it would let another socket share the port. NIO leaves a
            // datagram channel whose bind failed open: closed here.
            let created = NIOLockedValueBox<Channel?>(nil)
            let bootstrap = DatagramBootstrap(group: loop)
                // Room for a burst of every client's datagrams while the loop is busy (the
                // kernel caps it at net.core.rmem_max).
                .channelOption(ChannelOptions.socketOption(.so_rcvbuf), value: 4 << 20)
                .channelOption(ChannelOptions.socketOption(.so_sndbuf), value: 4 << 20)
                // One more byte than any datagram the tunnel carries: a larger one shows as such.
                .channelOption(
                    ChannelOptions.recvAllocator,
                    value: FixedSizeRecvByteBufferAllocator(capacity: DatagramFrameParser.maxDatagram + 1)
                )
                .channelInitializer { channel in
                    created.withLockedValue { $0 = channel }
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            UDPLocalSocketHandler(
                                app: app, manager: manager, connectTimeout: connectTimeout, logger: clientLogger))
                    }
                }
            do {
                channel = try await bootstrap.bind(host: address.description, port: port).get()
            } catch {
                try? await created.withLockedValue { $0 }?.close()
                throw error
            }
        case .tcp(let address, let port):
            channel = try await bootstrap.bind(host: address.description, port: port).get()
        case .unix(let path):
            let file = UnixSocketFile(path: path)
            try file.prepare()
            channel = try await bootstrap.bind(unixDomainSocketPath: path).get()
            do {
                try file.setMode(mode_t(app.effectiveSocketMode))
            } catch {
                try? await channel.close().get()
                throw error
            }
        }
        logger.info("remote app listening", metadata: ["localSocket": "\(app.localSocket)"])
        return RemoteAppListener(app: app, channel: channel)
    }

    /// Names one entry's listener and clients (a file may offer one app on several sockets).
    public static func key(_ app: RemoteAppConfig) -> String { "\(app.siteName)/\(app.appName) at \(app.localSocket)" }

    public func close() async {
        try? await channel.close().get()
        if case .unix(let path) = app.localSocket { try? FileManager.default.removeItem(atPath: path) }
    }
}

/// Holds a new client until its tunnel has a link, then hands it to a `StreamRelay`.
///
/// Starts waiting once the socket is active (the initializer runs before that), and
/// remembers a client that leaves while it waits, so no stream is opened for it. Autoread is
/// off while it waits, but NIO still reads a socket whose peer shut its side (EOF): the bytes
/// and the half-close that come then are kept and handed to the relay, so a client that
/// connects, maybe writes, and shuts down at once (a health check, a probe) still reaches the
/// app, and its close with it.
final class ClientArrivalHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    /// Bytes kept for a client that wrote before its tunnel was ready; past this it is closed.
    static let earlyBytesLimit = 1 << 20

    private let app: RemoteAppConfig
    private let manager: TunnelManager
    private let connectTimeout: Duration
    private let refusals: LogLimiter
    private let logger: Logger
    private var gone = false
    private var early: [ByteBuffer] = []
    private var earlyBytes = 0
    private var inputClosed = false

    init(
        app: RemoteAppConfig, manager: TunnelManager, connectTimeout: Duration, refusals: LogLimiter = LogLimiter(),
        logger: Logger
    ) {
        self.refusals = refusals
        self.app = app
        self.manager = manager
        self.connectTimeout = connectTimeout
        self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        let channel = context.channel
        let (app, manager, timeout, logger) = (self.app, self.manager, self.connectTimeout, self.logger)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        Task {
            let outcome = await manager.waitForTunnel(to: app.siteName, within: timeout)
            channel.eventLoop.execute {
                handler.value.tunnelReady(outcome, channel: channel, app: app, logger: logger, waited: timeout)
            }
        }
    }

    private func tunnelReady(
        _ outcome: TunnelWait, channel: Channel, app: RemoteAppConfig, logger: Logger, waited: Duration
    ) {
        guard !gone else { return }
        let driver: TunnelDriver
        switch outcome {
        case .ready(let ready):
            driver = ready
        case .refused(let reason):
            // Many clients may come while there is no path: one line now and then, not one each.
            let (allowed, suppressed) = refusals.admit("noPath")
            if allowed {
                logger.warning(
                    "refused a client: no path to the site",
                    metadata: ["reason": "\(reason)", "alsoRefusedSinceLastLine": "\(suppressed)"])
            }
            Counter(label: "weft_streams_refused_total", dimensions: [("peer", app.siteName), ("reason", "noPath")])
                .increment()
            Self.refuse(channel)
            return
        case .over:
            logger.warning("no tunnel to the site in time; closing the client", metadata: ["waited": "\(waited)"])
            Counter(label: "weft_streams_refused_total", dimensions: [("peer", app.siteName), ("reason", "noTunnel")])
                .increment()
            channel.close(promise: nil)
            return
        }
        let relay = StreamRelay(
            driver: driver, meter: manager.appTraffic.meter(.remote(site: app.siteName, app: app.appName)),
            logger: logger)
        let origin = StreamOrigin(client: channel.remoteAddress, local: channel.localAddress)
        let (early, inputClosed) = (self.early, self.inputClosed)
        self.early = []
        do {
            channel.pipeline.syncOperations.removeHandler(self).whenFailure { _ in }
            try channel.pipeline.syncOperations.addHandler(RelayChannelHandler(relay: relay))
        } catch {
            channel.close(promise: nil)
            return
        }
        Counter(label: "weft_streams_opened_total", dimensions: [("peer", app.siteName), ("side", "client")])
            .increment()
        // The stream opens, and what came while the client waited goes in, before the socket is
        // attached (attaching reads on). On the tunnel's own loop this happens now, so no read
        // of the socket can come first and find the stream not yet open; from another loop, the
        // socket's later events queue behind this on the tunnel's loop.
        let start: @Sendable () -> Void = {
            relay.open(appName: app.appName, target: app.appSocket?.description, origin: origin)
            for bytes in early { relay.appRead(bytes) }
            if inputClosed { relay.appInputClosed() }
            relay.attach(channel)
        }
        if driver.eventLoop.inEventLoop {
            start()
        } else {
            driver.eventLoop.execute(start)
        }
    }

    /// Closes a client with a reset rather than an end of stream: it sees its connection
    /// refused, not an app that answered nothing.
    private static func refuse(_ channel: Channel) {
        guard let socket = channel as? SocketOptionProvider else {
            channel.close(promise: nil)
            return
        }
        socket.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        earlyBytes += bytes.readableBytes
        guard earlyBytes <= Self.earlyBytesLimit else {
            logger.warning("a client wrote over 1 MiB before its tunnel was ready; closing it")
            gone = true
            context.close(promise: nil)
            return
        }
        early.append(bytes)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputClosed = true
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A reset while waiting: nothing to carry, no stream to open.
        gone = true
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        gone = true
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension ClientArrivalHandler: Sendable {}
