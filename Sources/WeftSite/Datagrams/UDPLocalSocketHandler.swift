import Logging
import NIOCore
import WeftTransport
import WeftWire

/// The `udp:` local socket of a remote app: each client address seen there becomes a
/// `UDPClientFlow`, up to `udpMaxFlows` at once, and ends after `udpIdleTimeout` without a
/// datagram either way.
///
/// While the tunnel is awaited a new flow keeps its first datagrams (bounded); a client
/// address beyond the cap has its datagrams dropped, counted and logged (once per 10 s), and
/// gets a flow as soon as another ends.
final class UDPLocalSocketHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    enum Flow {
        /// The tunnel is awaited; what the client sent meanwhile.
        case waiting([ByteBuffer], bytes: Int)
        case open(UDPClientFlow)
    }

    /// Datagrams (and bytes) a flow keeps while its tunnel is awaited.
    static let waitingLimit = (datagrams: 64, bytes: 256 << 10)

    private let app: RemoteAppConfig
    private let manager: TunnelManager
    private let connectTimeout: Duration
    private let drops: UDPDropCounter
    private let logger: Logger
    private var table: UDPFlowTable<Flow>
    private var sweeper: RepeatedTask?

    init(app: RemoteAppConfig, manager: TunnelManager, connectTimeout: Duration, logger: Logger) {
        self.app = app
        self.manager = manager
        self.connectTimeout = connectTimeout
        self.logger = logger
        self.drops = UDPDropCounter(peer: app.siteName, app: app.appName, logger: logger)
        self.table = UDPFlowTable(
            maxFlows: app.udpMaxFlows, idleTimeout: TimeAmount(app.udpIdleTimeout))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // Idle flows are looked for a few times per timeout, at least every second.
        let period = TimeAmount.nanoseconds(min(1_000_000_000, max(100_000_000, table.idleTimeout.nanoseconds / 4)))
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        sweeper = context.eventLoop.scheduleRepeatedTask(initialDelay: period, delay: period) { _ in
            handler.value.sweep(now: .now())
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let datagram = envelope.data
        let client = envelope.remoteAddress
        guard datagram.readableBytes <= DatagramFrameParser.maxDatagram else {
            drops.count("oversized")
            return
        }
        let now = NIODeadline.now()
        switch table.touch(client, now: now) {
        case .open(let flow):
            flow.clientDatagram(datagram)
        case .waiting(let queue, let bytes):
            guard queue.count < Self.waitingLimit.datagrams, bytes + datagram.readableBytes <= Self.waitingLimit.bytes
            else {
                drops.count("waiting")
                return
            }
            table.update(client) { $0 = .waiting(queue + [datagram], bytes: bytes + datagram.readableBytes) }
        case nil:
            guard table.insert(client, .waiting([datagram], bytes: datagram.readableBytes), now: now) else {
                drops.count("flows")
                return
            }
            awaitTunnel(for: client, context: context)
        }
    }

    private func awaitTunnel(for client: SocketAddress, context: ChannelHandlerContext) {
        let channel = context.channel
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let (manager, site, timeout) = (self.manager, app.siteName, connectTimeout)
        Task {
            let outcome = await manager.waitForTunnel(to: site, within: timeout)
            channel.eventLoop.execute { handler.value.tunnelReady(outcome, for: client, channel: channel) }
        }
    }

    private func tunnelReady(_ outcome: TunnelWait, for client: SocketAddress, channel: Channel) {
        // Gone meanwhile (the socket closed, the app was removed).
        guard case .waiting(let queue, _)? = table.entries[client]?.flow else { return }
        guard case .ready(let driver) = outcome else {
            table.remove(client)
            drops.count("noTunnel", queue.count)
            return
        }
        var flowLogger = logger
        flowLogger[metadataKey: "client"] = "\(client)"
        let handler = NIOLoopBound(self, eventLoop: channel.eventLoop)
        let loop = channel.eventLoop
        let flow = UDPClientFlow(
            driver: driver, client: client, socket: channel, drops: drops, logger: flowLogger,
            onEnd: { ended in loop.execute { handler.value.flowEnded(ended) } })
        _ = table.replace(client, with: .open(flow))
        let origin = StreamOrigin(client: client, local: channel.localAddress)
        let (appName, target) = (app.appName, app.appSocket?.description)
        let start: @Sendable () -> Void = { flow.open(appName: appName, target: target, origin: origin, queued: queue) }
        if driver.eventLoop.inEventLoop { start() } else { driver.eventLoop.execute(start) }
    }

    /// A flow ended (the peer reset it, the tunnel went): its client gets a new one next time.
    private func flowEnded(_ flow: UDPClientFlow) {
        // Only when it is the flow that ended: a new one may have taken the address already.
        guard case .open(let current)? = table.entries[flow.client]?.flow, current === flow else { return }
        table.remove(flow.client)
    }

    private func sweep(now: NIODeadline) {
        for (_, flow) in table.removeIdle(now: now) {
            if case .open(let flow) = flow {
                flow.close("idle for \(app.udpIdleTimeout)")
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        sweeper?.cancel()
        sweeper = nil
        for (_, flow) in table.removeAll() {
            if case .open(let flow) = flow { flow.close("the local socket closed") }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // An ICMP error for one client (its port closed) must not close the socket for all.
        logger.debug("UDP local socket error", metadata: ["error": "\(error)"])
    }
}

@available(*, unavailable)
extension UDPLocalSocketHandler: Sendable {}
