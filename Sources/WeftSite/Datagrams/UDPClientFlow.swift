import Logging
import Metrics
import NIOCore
import WeftTransport
import WeftTunnel
import WeftWire

/// One client address of a `udp:` local socket: its datagrams go, framed, on a stream to the
/// app at the far site, and the app's datagrams come back to that address only.
///
/// UDP has no backpressure: when the tunnel holds enough of the flow's bytes (the engine asks
/// to pause) or the client's socket cannot take more, datagrams are dropped and counted, as a
/// congested router would, rather than queued without end. State lives on the driver's loop.
final class UDPClientFlow: TunnelStreamDelegate, @unchecked Sendable {
    let driver: TunnelDriver
    let client: SocketAddress
    private let socket: Channel
    private var logger: Logger
    private let onEnd: @Sendable (UDPClientFlow) -> Void
    private let drops: UDPDropCounter
    private var stream: StreamID?
    private var parser = DatagramFrameParser()
    private let serializer = DatagramFrameSerializer()
    private var paused = false
    private var ended = false

    init(
        driver: TunnelDriver, client: SocketAddress, socket: Channel, drops: UDPDropCounter, logger: Logger,
        onEnd: @escaping @Sendable (UDPClientFlow) -> Void
    ) {
        self.driver = driver
        self.client = client
        self.socket = socket
        self.drops = drops
        self.logger = logger
        self.onEnd = onEnd
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

    /// A datagram from the client (from the socket's loop).
    func clientDatagram(_ datagram: ByteBuffer) {
        if driver.eventLoop.inEventLoop {
            send(datagram)
        } else {
            driver.eventLoop.execute { self.send(datagram) }
        }
    }

    private func send(_ datagram: ByteBuffer) {
        guard let stream, !ended else { return }
        guard !paused else {
            drops.count("congested")
            return
        }
        var framed = ByteBuffer()
        serializer.serialize(datagram, into: &framed)
        driver.send(framed, on: stream)
    }

    /// Ends the flow from this side (idle, the socket closed).
    func close(_ reason: String) {
        let body: @Sendable () -> Void = {
            guard !self.ended else { return }
            if let stream = self.stream { self.driver.reset(stream, code: .cancelled, message: reason) }
            self.logger.debug("UDP flow closed", metadata: ["reason": "\(reason)"])
            self.end()
        }
        if driver.eventLoop.inEventLoop { body() } else { driver.eventLoop.execute(body) }
    }

    private func end() {
        guard !ended else { return }
        ended = true
        onEnd(self)
    }

    // MARK: TunnelStreamDelegate (on the driver's loop)

    func streamReceived(_ bytes: ByteBuffer, on stream: StreamID) {
        let count = bytes.readableBytes
        parser.append(bytes)
        driver.consumed(count, on: stream)
        do {
            var wrote = false
            while let datagram = try parser.next() {
                // Only ever to the client this flow belongs to.
                guard socket.isWritable else {
                    drops.count("clientSlow")
                    continue
                }
                socket.write(AddressedEnvelope(remoteAddress: client, data: datagram), promise: nil)
                wrote = true
            }
            if wrote { socket.flush() }
        } catch {
            drops.count("oversized")
            logger.warning("the peer framed a datagram over the limit; UDP flow reset", metadata: ["error": "\(error)"])
            driver.reset(stream, code: .protocolError, message: "a datagram over \(parser.limit) bytes")
            end()
        }
    }

    func streamRemoteFinished(_ stream: StreamID) {
        driver.finish(stream)
        end()
    }

    func streamReset(_ stream: StreamID, code: StreamReset.Code, message: String) {
        if [StreamReset.Code.notExposed, .notAllowed, .targetOutOfRange, .appDown, .limitReached].contains(code) {
            logger.warning("UDP flow refused by the peer", metadata: ["code": "\(code)", "reason": "\(message)"])
        } else {
            logger.debug("UDP flow ended by the peer", metadata: ["code": "\(code)", "reason": "\(message)"])
        }
        end()
    }

    func streamClosed(_ stream: StreamID) { end() }
    func streamPauseReading(_ stream: StreamID) { paused = true }
    func streamResumeReading(_ stream: StreamID) { paused = false }
}
