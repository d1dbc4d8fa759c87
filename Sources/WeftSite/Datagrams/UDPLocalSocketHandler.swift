import Logging
import NIOCore
import WeftTransport
import WeftWire

/// The `udp:` local socket of a remote app: each client address seen there becomes a
/// `UDPClientFlow`, up to `udpMaxFlows` at once, and ends after `udpIdleTimeout` without a
/// datagram either way.
///
/// While the tunnel is awaited a new flow keeps its first datagrams (bounded per flow and per
/// socket, as copies of their own size); a client address beyond the cap has its datagrams
/// dropped, counted and logged (once per 10 s), and gets a flow as soon as another ends. A
/// flow the far site refused is not opened again for `refusalPause`: a client that keeps
/// sending costs a drop each, not a stream each.
final class UDPLocalSocketHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    enum Flow {
        /// The tunnel is awaited; what the client sent meanwhile.
        case waiting([ByteBuffer], bytes: Int)
        case open(UDPClientFlow)
        /// The far site refused the flow; datagrams are dropped until then.
        case refused(until: NIODeadline)
    }

    /// Datagrams (and bytes) a flow keeps while its tunnel is awaited, and bytes all of them.
    static let waitingLimit = (datagrams: 64, bytes: 256 << 10, socketBytes: 4 << 20)
    static let refusalPause = TimeAmount.seconds(5)

    private let app: RemoteAppConfig
    private let manager: TunnelManager
    private let connectTimeout: Duration
    private let drops: UDPDropCounter
    private let logger: Logger
    private var table: UDPFlowTable<Flow>
    private var waitingBytes = 0
    private var sweeper: RepeatedTask?

    init(app: RemoteAppConfig, manager: TunnelManager, connectTimeout: Duration, logger: Logger) {
        self.app = app
        self.manager = manager
        self.connectTimeout = connectTimeout
        self.logger = logger
        self.drops = UDPDropCounter(peer: app.siteName, app: app.appName, logger: logger)
        self.table = UDPFlowTable(maxFlows: app.udpMaxFlows, idleTimeout: TimeAmount(app.udpIdleTimeout))
    }

    func channelActive(context: ChannelHandlerContext) {
        // Idle flows are looked for a few times per timeout, at least every second.
        let period = TimeAmount.nanoseconds(min(1_000_000_000, max(100_000_000, table.idleTimeout.nanoseconds / 4)))
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        sweeper = context.eventLoop.scheduleRepeatedTask(initialDelay: period, delay: period) { _ in
            handler.value.sweep(now: .now())
        }
        context.fireChannelActive()
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
            let size = datagram.readableBytes
            guard queue.count < Self.waitingLimit.datagrams, bytes + size <= Self.waitingLimit.bytes,
                waitingBytes + size <= Self.waitingLimit.socketBytes
            else {
                drops.count("waiting")
                return
            }
            waitingBytes += size
            let copy = ByteBuffer(bytes: datagram.readableBytesView)
            table.update(client) { $0 = .waiting(queue + [copy], bytes: bytes + size) }
        case .refused(let until):
            guard now >= until else {
                drops.count("refused")
                return
            }
            table.remove(client)
            start(client, datagram, now: now, context: context)
        case nil:
            start(client, datagram, now: now, context: context)
        }
    }

    /// A new client address: a waiting flow, and the tunnel awaited for it.
    private func start(
        _ client: SocketAddress, _ datagram: ByteBuffer, now: NIODeadline, context: ChannelHandlerContext
    ) {
        let size = datagram.readableBytes
        guard waitingBytes + size <= Self.waitingLimit.socketBytes else {
            drops.count("waiting")
            return
        }
        let copy = ByteBuffer(bytes: datagram.readableBytesView)
        guard table.insert(client, .waiting([copy], bytes: size), now: now) else {
            drops.count("flows")
            return
        }
        waitingBytes += size
        let channel = context.channel
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let (manager, site, timeout) = (self.manager, app.siteName, connectTimeout)
        Task {
            let outcome = await manager.waitForTunnel(to: site, within: timeout)
            channel.eventLoop.execute { handler.value.tunnelReady(outcome, for: client, channel: channel) }
        }
    }

    private func tunnelReady(_ outcome: TunnelWait, for client: SocketAddress, channel: Channel) {
        // Gone meanwhile (the socket closed, the flow went idle).
        guard case .waiting(let queue, let bytes)? = table.entries[client]?.flow else { return }
        waitingBytes -= bytes
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
            driver: driver, client: client, socket: channel, drops: drops,
            meter: manager.appTraffic.meter(.remote(site: app.siteName, app: app.appName)), logger: flowLogger,
            onEnd: { ended, refused in loop.execute { handler.value.flowEnded(ended, refused: refused) } })
        _ = table.replace(client, with: .open(flow))
        let origin = StreamOrigin(client: client, local: channel.localAddress)
        let (appName, target) = (app.appName, app.appSocket?.description)
        let start: @Sendable () -> Void = { flow.open(appName: appName, target: target, origin: origin, queued: queue) }
        if driver.eventLoop.inEventLoop { start() } else { driver.eventLoop.execute(start) }
    }

    /// A flow ended (the peer reset or refused it, the tunnel went): its client gets a new one
    /// next time, or after `refusalPause` when it was refused.
    private func flowEnded(_ flow: UDPClientFlow, refused: Bool) {
        // Only when it is the flow that ended: a new one may have taken the address already.
        guard case .open(let current)? = table.entries[flow.client]?.flow, current === flow else { return }
        if refused {
            _ = table.replace(flow.client, with: .refused(until: .now() + Self.refusalPause))
        } else {
            table.remove(flow.client)
        }
    }

    private func sweep(now: NIODeadline) {
        // A flow is idle only when the app sent nothing either.
        for (client, entry) in table.entries {
            if case .open(let flow) = entry.flow, let last = flow.lastActiveFromApp, last > entry.lastActive {
                _ = table.touch(client, now: last)
            }
        }
        for (_, flow) in table.removeIdle(now: now) {
            switch flow {
            case .open(let flow): flow.close("idle for \(app.udpIdleTimeout)")
            case .waiting(let queue, let bytes):
                waitingBytes -= bytes
                drops.count("noTunnel", queue.count)
            case .refused: break
            }
        }
    }

    private func closeAll(_ reason: String) {
        sweeper?.cancel()
        sweeper = nil
        for (_, flow) in table.removeAll() {
            if case .open(let flow) = flow { flow.close(reason) }
        }
        waitingBytes = 0
    }

    func channelInactive(context: ChannelHandlerContext) {
        closeAll("the local socket closed")
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        closeAll("the local socket closed")
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // An ICMP error for one client (its port closed) must not close the socket for all.
        logger.debug("UDP local socket error", metadata: ["error": "\(error)"])
    }
}

@available(*, unavailable)
extension UDPLocalSocketHandler: Sendable {}
