import Logging
import NIOCore
import Synchronization
import WeftTransport
import WeftTunnel
import WeftWire

/// One client address of a `udp:` local socket: its datagrams go, framed, on a stream to the
/// app at the far site, and the app's datagrams come back to that address only.
///
/// UDP has no backpressure: when the tunnel holds more than `DatagramStream.maxPendingBytes` of the flow's
/// bytes, or a socket cannot take more, datagrams are dropped and counted, as a congested
/// router would, rather than queued (a late datagram is worth less than none to DNS or a
/// call). State lives on the driver's loop.
final class UDPClientFlow: TunnelStreamDelegate, @unchecked Sendable {
    /// Datagrams on their way from the socket's loop to the driver's at most.
    static let maxHops = 256

    let driver: TunnelDriver
    let client: SocketAddress
    private let socket: Channel
    private var logger: Logger
    private let onEnd: @Sendable (UDPClientFlow, _ refused: Bool) -> Void
    private let drops: UDPDropCounter
    private var stream: StreamID?
    private var tunnel: DatagramStream
    private var ended = false
    private let hops = Atomic<Int>(0)
    /// When a datagram last came back from the app (uptime nanoseconds), read by the socket's
    /// idle sweep: a flow is idle only when neither side sent.
    private let lastFromApp = Atomic<UInt64>(0)

    init(
        driver: TunnelDriver, client: SocketAddress, socket: Channel, drops: UDPDropCounter,
        meter: AppTrafficMeter? = nil, logger: Logger,
        onEnd: @escaping @Sendable (UDPClientFlow, _ refused: Bool) -> Void
    ) {
        self.tunnel = DatagramStream(meter: meter)
        meter?.streamStarted()
        self.driver = driver
        self.client = client
        self.socket = socket
        self.drops = drops
        self.logger = logger
        self.onEnd = onEnd
    }

    deinit { tunnel.meter?.streamEnded() }

    /// When the app last sent this client a datagram, if ever.
    var lastActiveFromApp: NIODeadline? {
        let nanos = lastFromApp.load(ordering: .relaxed)
        return nanos == 0 ? nil : .uptimeNanoseconds(nanos)
    }

    /// Opens the stream (on the driver's loop) and sends what came while the tunnel was awaited.
    func open(appName: String, target: String?, origin: StreamOrigin?, queued: [ByteBuffer]) {
        driver.eventLoop.preconditionInEventLoop()
        guard !ended else { return }
        let id = driver.openStream(appName: appName, target: target, origin: origin, datagrams: true, delegate: self)
        // An older peer cannot take the stream: it was reset before `openStream` returned.
        guard !ended else { return }
        stream = id
        logger[metadataKey: "stream"] = "\(id)"
        logger.debug("UDP flow opened")
        for datagram in queued { send(datagram) }
    }

    /// A datagram from the client (from the socket's loop). Kept only as a copy of its own
    /// size when it must wait for another loop: the socket reads into 64 KiB buffers.
    func clientDatagram(_ datagram: ByteBuffer) {
        if driver.eventLoop.inEventLoop {
            send(datagram)
            return
        }
        guard hops.add(1, ordering: .relaxed).newValue <= Self.maxHops else {
            hops.subtract(1, ordering: .relaxed)
            drops.count("congested")
            return
        }
        let copy = ByteBuffer(bytes: datagram.readableBytesView)
        driver.eventLoop.execute {
            self.hops.subtract(1, ordering: .relaxed)
            self.send(copy)
        }
    }

    private func send(_ datagram: ByteBuffer) {
        guard let stream, !ended else { return }
        tunnel.send(datagram, on: stream, driver: driver, drops: drops)
    }

    /// Ends the flow from this side (idle, the socket closed).
    func close(_ reason: String) {
        let body: @Sendable () -> Void = {
            guard !self.ended else { return }
            if let stream = self.stream { self.driver.reset(stream, code: .cancelled, message: reason) }
            self.logger.debug("UDP flow closed", metadata: ["reason": "\(reason)"])
            self.end(refused: false)
        }
        if driver.eventLoop.inEventLoop { body() } else { driver.eventLoop.execute(body) }
    }

    private func end(refused: Bool) {
        guard !ended else { return }
        ended = true
        onEnd(self, refused)
    }

    // MARK: TunnelStreamDelegate (on the driver's loop)

    func streamReceived(_ bytes: ByteBuffer, on stream: StreamID) {
        var wrote = false
        let whole = tunnel.receive(bytes, on: stream, driver: driver, drops: drops) { datagram in
            // Only ever to the client this flow belongs to.
            guard socket.isWritable else { return drops.count("clientSlow") }
            socket.write(AddressedEnvelope(remoteAddress: client, data: datagram), promise: nil)
            wrote = true
        }
        if wrote {
            socket.flush()
            lastFromApp.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed)
        }
        if !whole { end(refused: false) }
    }

    func streamRemoteFinished(_ stream: StreamID) {
        driver.finish(stream)
        end(refused: false)
    }

    func streamReset(_ stream: StreamID, code: StreamReset.Code, message: String) {
        let refusal = [StreamReset.Code.notExposed, .notAllowed, .targetOutOfRange, .appDown, .limitReached]
            .contains(code)
        if refusal {
            drops.warn(
                "refused \(code)", "UDP flow refused by the peer",
                metadata: ["code": "\(code)", "reason": "\(message)"])
        } else {
            logger.debug("UDP flow ended by the peer", metadata: ["code": "\(code)", "reason": "\(message)"])
        }
        end(refused: refusal)
    }

    func streamClosed(_ stream: StreamID) { end(refused: false) }
    func streamPauseReading(_ stream: StreamID) { tunnel.paused = true }
    func streamResumeReading(_ stream: StreamID) { tunnel.paused = false }
}
