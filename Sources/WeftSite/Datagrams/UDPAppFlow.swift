import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import WeftTransport
import WeftTunnel
import WeftWire

/// The far end of a UDP flow: a UDP socket of its own, connected to the app (so the kernel
/// drops any datagram that is not from the app's address, and nothing is ever sent anywhere
/// else), carrying the stream's datagrams to the app and the app's back. It ends after
/// `idleTimeout` without a datagram either way, or with the stream.
///
/// Everything runs on the driver's loop: the socket is opened there.
final class UDPAppFlow: TunnelStreamDelegate, @unchecked Sendable {
    private let driver: TunnelDriver
    private let stream: StreamID
    private let app: SocketAddress
    private let idleTimeout: TimeAmount
    private let drops: UDPDropCounter
    private let logger: Logger
    private let onEnd: @Sendable () -> Void
    private let onOpen: @Sendable (Channel) -> Void
    private var channel: Channel?
    /// Datagrams that came before the socket was open.
    private var pending: [ByteBuffer] = []
    private var tunnel: DatagramStream
    private var ended = false
    private var lastActive = NIODeadline.now()
    private var idleCheck: RepeatedTask?

    init(
        driver: TunnelDriver, stream: StreamID, app: SocketAddress, idleTimeout: Duration, drops: UDPDropCounter,
        meter: AppTrafficMeter? = nil, logger: Logger, onOpen: @escaping @Sendable (Channel) -> Void = { _ in },
        onEnd: @escaping @Sendable () -> Void
    ) {
        self.tunnel = DatagramStream(meter: meter)
        meter?.streamStarted()
        self.onOpen = onOpen
        self.driver = driver
        self.stream = stream
        self.app = app
        self.idleTimeout = TimeAmount(idleTimeout)
        self.drops = drops
        self.logger = logger
        self.onEnd = onEnd
    }

    deinit { tunnel.meter?.streamEnded() }

    /// Opens the socket to the app.
    func start() {
        driver.eventLoop.preconditionInEventLoop()
        let flow = self
        // Armed first: a connect that fails at once ends the flow, and `end` cancels it.
        let period = TimeAmount.nanoseconds(min(1_000_000_000, max(100_000_000, idleTimeout.nanoseconds / 4)))
        idleCheck = driver.eventLoop.scheduleRepeatedTask(initialDelay: period, delay: period) { _ in
            flow.checkIdle(now: .now())
        }
        // NIO leaves a datagram channel whose connect failed open: closed here.
        let created = NIOLockedValueBox<Channel?>(nil)
        DatagramBootstrap(group: driver.eventLoop)
            // Room for a burst from the app or from the tunnel (capped by the kernel's maximum).
            .channelOption(ChannelOptions.socketOption(.so_rcvbuf), value: 1 << 20)
            .channelOption(ChannelOptions.socketOption(.so_sndbuf), value: 1 << 20)
            .channelOption(ChannelOptions.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 1 << 16))
            .channelInitializer { channel in
                created.withLockedValue { $0 = channel }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(UDPAppSocketHandler(flow: flow))
                }
            }
            .connect(to: app)
            .whenComplete { result in
                switch result {
                case .success(let channel): flow.opened(channel)
                case .failure(let error):
                    created.withLockedValue { $0 }?.close(promise: nil)
                    flow.drops.warn(
                        "socket", "cannot open a UDP socket to the app; flow refused", metadata: ["error": "\(error)"])
                    guard !flow.ended else { return }
                    flow.driver.reset(flow.stream, code: .appDown, message: "cannot reach the app: \(error)")
                    flow.end()
                }
            }
    }

    private func opened(_ channel: Channel) {
        guard !ended else {
            channel.close(promise: nil)
            return
        }
        self.channel = channel
        onOpen(channel)
        for datagram in pending { write(datagram) }
        pending = []
        channel.flush()
    }

    private func write(_ datagram: ByteBuffer) {
        guard let channel else {
            if pending.count < UDPLocalSocketHandler.waitingLimit.datagrams {
                pending.append(datagram)
            } else {
                drops.count("waiting")
            }
            return
        }
        guard channel.isWritable else {
            drops.count("appSlow")
            return
        }
        channel.write(AddressedEnvelope(remoteAddress: app, data: datagram), promise: nil)
    }

    /// A datagram from the app.
    func appDatagram(_ datagram: ByteBuffer) {
        guard !ended else { return }
        lastActive = .now()
        guard datagram.readableBytes <= DatagramFrameParser.maxDatagram else {
            drops.count("oversized")
            return
        }
        tunnel.send(datagram, on: stream, driver: driver, drops: drops)
    }

    /// The socket was closed under the flow (its app was removed, the site stops).
    func socketClosed() {
        guard !ended else { return }
        driver.reset(stream, code: .cancelled, message: "the app's socket closed")
        end()
    }

    private func checkIdle(now: NIODeadline) {
        guard !ended, now - lastActive >= idleTimeout else { return }
        logger.debug("UDP flow idle; closing it")
        driver.reset(stream, code: .cancelled, message: "idle")
        end()
    }

    private func end() {
        guard !ended else { return }
        ended = true
        idleCheck?.cancel()
        idleCheck = nil
        channel?.close(promise: nil)
        channel = nil
        pending = []
        onEnd()
    }

    // MARK: TunnelStreamDelegate

    func streamReceived(_ bytes: ByteBuffer, on stream: StreamID) {
        guard !ended else { return driver.consumed(bytes.readableBytes, on: stream) }
        let whole = tunnel.receive(bytes, on: stream, driver: driver, drops: drops) { datagram in
            lastActive = .now()
            write(datagram)
        }
        guard whole else { return end() }
        channel?.flush()
    }

    func streamRemoteFinished(_ stream: StreamID) {
        driver.finish(stream)
        end()
    }

    func streamReset(_ stream: StreamID, code: StreamReset.Code, message: String) { end() }
    func streamClosed(_ stream: StreamID) { end() }
    func streamPauseReading(_ stream: StreamID) { tunnel.paused = true }
    func streamResumeReading(_ stream: StreamID) { tunnel.paused = false }
}

/// Hands the app's datagrams to its flow.
final class UDPAppSocketHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let flow: UDPAppFlow

    init(flow: UDPAppFlow) { self.flow = flow }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        flow.appDatagram(unwrapInboundIn(data).data)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // The app's port is closed (ICMP): it may open again; datagrams keep going to it.
    }

    func channelInactive(context: ChannelHandlerContext) {
        flow.socketClosed()
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension UDPAppSocketHandler: Sendable {}
