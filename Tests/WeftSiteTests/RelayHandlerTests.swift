import Logging
import NIOCore
import NIOEmbedded
import Testing
import WeftTransport
import WeftTunnel
import WeftWire

@testable import WeftSite

/// The stream relay and its channel handler on `EmbeddedChannel`s: an app socket on one side,
/// a real `TunnelDriver` and one link on the other, all on one embedded loop. Bytes, half-close
/// and resets go in at either end; what comes out at the other is checked frame by frame.
@Suite("the stream relay on embedded channels", .timeLimit(.minutes(10)))
struct RelayHandlerTests {
    final class Harness {
        let loop = EmbeddedEventLoop()
        let driver: TunnelDriver
        let link: EmbeddedChannel
        let app: EmbeddedChannel
        let relay: StreamRelay
        private var parser = TunnelFrameParser(limits: .default)

        init() throws {
            driver = TunnelDriver(
                eventLoop: loop, localIncarnation: 1, peerSite: "peer", options: .init(opensOddStreams: true),
                logger: Logger(label: "test"))
            link = EmbeddedChannel(loop: loop)
            try link.connect(to: SocketAddress(ipAddress: "198.18.0.2", port: 4000)).wait()
            driver.attach(link, leftover: ByteBuffer())
            relay = StreamRelay(driver: driver, logger: Logger(label: "test"))
            app = EmbeddedChannel(handler: RelayChannelHandler(relay: relay), loop: loop)
            try app.connect(to: SocketAddress(ipAddress: "198.18.0.3", port: 80)).wait()
            relay.open(appName: "web", target: nil, origin: nil)
            relay.attach(app)
            loop.run()
        }

        /// Frames the engine wrote on the link since the last call (pings and acks left out).
        func framesOut() throws -> [TunnelFrame] {
            while let bytes = try link.readOutbound(as: ByteBuffer.self) { parser.append(bytes) }
            var frames: [TunnelFrame] = []
            while let frame = try parser.nextFrame() {
                switch frame {
                case .ping, .pong, .ack: continue
                default: frames.append(frame)
                }
            }
            return frames
        }

        /// The peer's frames, arriving on the link.
        func peerSends(_ frames: TunnelFrame...) throws {
            var bytes = ByteBuffer()
            for frame in frames { TunnelFrameSerializer().serialize(frame, into: &bytes) }
            try link.writeInbound(bytes)
            loop.run()
        }

        /// What the relay wrote to the app socket.
        func appReceived() throws -> String {
            var text = ""
            while var bytes = try app.readOutbound(as: ByteBuffer.self) {
                text += bytes.readString(length: bytes.readableBytes)!
            }
            return text
        }

        var stream: UInt32 { relay.stream!.rawValue }
    }

    static func data(_ stream: UInt32, at offset: UInt64, _ text: String, fin: Bool = false) -> TunnelFrame {
        .streamData(StreamData(streamID: stream, offset: offset, fin: fin, data: ByteBuffer(string: text)))
    }

    @Test("the open goes out first; app bytes become stream data; the peer's bytes reach the app in order")
    func bothWays() throws {
        let harness = try Harness()
        let opened = try harness.framesOut()
        #expect(
            opened.contains { if case .streamOpen(let open) = $0 { open.appName == "web" } else { false } }, "\(opened)"
        )

        try harness.app.writeInbound(ByteBuffer(string: "GET / HTTP/1.0\r\n\r\n"))
        harness.loop.run()
        #expect(try harness.framesOut() == [Self.data(harness.stream, at: 0, "GET / HTTP/1.0\r\n\r\n")])

        // Out of order on the wire, in order at the app.
        try harness.peerSends(Self.data(harness.stream, at: 5, "world"), Self.data(harness.stream, at: 0, "hello"))
        #expect(try harness.appReceived() == "helloworld")
    }

    @Test("the app's EOF finishes the stream after its last byte; the peer's finish ends it cleanly")
    func halfClose() throws {
        let harness = try Harness()
        _ = try harness.framesOut()
        try harness.app.writeInbound(ByteBuffer(string: "request"))
        harness.app.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        harness.loop.run()
        let out = try harness.framesOut()
        #expect(
            out == [Self.data(harness.stream, at: 0, "request")] + [Self.data(harness.stream, at: 7, "", fin: true)]
                || out == [Self.data(harness.stream, at: 0, "request", fin: true)], "\(out)")
        // The answer, with the peer's fin: the app gets every byte.
        try harness.peerSends(Self.data(harness.stream, at: 0, "answer", fin: true))
        #expect(try harness.appReceived() == "answer")
    }

    @Test("a reset from the peer closes the app socket; nothing more is written to it")
    func peerReset() throws {
        let harness = try Harness()
        _ = try harness.framesOut()
        try harness.peerSends(
            .streamReset(StreamReset(streamID: harness.stream, code: .appDown, finalSize: 0, message: "gone")))
        #expect(!harness.app.isActive, "the app socket stayed open after the peer's reset")
        #expect(harness.driver.streamCount == 0)
    }

    @Test("the app socket closing before the stream ended resets the stream at the peer")
    func appGone() throws {
        let harness = try Harness()
        _ = try harness.framesOut()
        try harness.app.close().wait()
        harness.loop.run()
        let out = try harness.framesOut()
        #expect(
            out.contains { if case .streamReset(let reset) = $0 { reset.streamID == harness.stream } else { false } },
            "\(out)")
        #expect(harness.driver.streamCount == 0)
    }

    @Test("the app's bytes are carried even when its socket closes right after them, before the peer finished")
    func bytesThenClose() throws {
        let harness = try Harness()
        _ = try harness.framesOut()
        try harness.app.writeInbound(ByteBuffer(string: "last words"))
        harness.app.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        try harness.app.close().wait()
        harness.loop.run()
        let out = try harness.framesOut()
        let carried = out.compactMap { frame -> String? in
            guard case .streamData(let data) = frame else { return nil }
            return String(buffer: data.data)
        }.joined()
        #expect(carried == "last words", "\(out)")
        // The stream then ends at the peer: with the fin, or cancelled, never left open.
        #expect(
            out.contains {
                switch $0 {
                case .streamData(let data): data.fin
                case .streamReset: true
                default: false
                }
            }, "\(out)")
    }
}
