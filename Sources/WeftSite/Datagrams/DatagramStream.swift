import NIOCore
import WeftTransport
import WeftTunnel
import WeftWire

/// The tunnel side of a UDP flow, shared by both ends: datagrams framed into the stream (or
/// dropped when it holds enough), and the stream's bytes parsed back into datagrams.
struct DatagramStream {
    /// Bytes of a flow the tunnel may hold before its datagrams are dropped.
    static let maxPendingBytes = 64 << 10

    private var parser = DatagramFrameParser()
    private let serializer = DatagramFrameSerializer()
    /// The engine asked to stop reading the flow's socket.
    var paused = false
    /// The app's counters (API, dashboard), counting datagram payloads.
    let meter: AppTrafficMeter?

    init(meter: AppTrafficMeter?) {
        self.meter = meter
    }

    /// Frames `datagram` into `stream`, or drops it (`congested`) when the tunnel holds more
    /// than `maxPendingBytes` of the flow: a late datagram is worth less than none.
    func send(_ datagram: ByteBuffer, on stream: StreamID, driver: TunnelDriver, drops: UDPDropCounter) {
        guard !paused, driver.pendingBytes(on: stream) <= Self.maxPendingBytes else {
            drops.count("congested")
            return
        }
        var framed = ByteBuffer()
        serializer.serialize(datagram, into: &framed)
        meter?.sent(datagram.readableBytes)
        driver.send(framed, on: stream)
    }

    /// Takes the stream's bytes (credited back at once: UDP has no backpressure) and hands
    /// each whole datagram to `deliver`. False when the peer framed one over the limit: the
    /// stream is then reset, counted and logged, and the flow must end.
    mutating func receive(
        _ bytes: ByteBuffer, on stream: StreamID, driver: TunnelDriver, drops: UDPDropCounter,
        _ deliver: (ByteBuffer) -> Void
    ) -> Bool {
        let count = bytes.readableBytes
        parser.append(bytes)
        driver.consumed(count, on: stream)
        do {
            while let datagram = try parser.next() {
                meter?.received(datagram.readableBytes)
                deliver(datagram)
            }
            return true
        } catch {
            drops.count("oversized")
            drops.warn(
                "overlimit", "the peer framed a datagram over the limit; UDP flow reset",
                metadata: ["error": "\(error)"])
            driver.reset(stream, code: .protocolError, message: "a datagram over \(parser.limit) bytes")
            return false
        }
    }
}
