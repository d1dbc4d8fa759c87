import Crypto
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import Testing
import WeftTunnel
import WeftWire

@testable import WeftTransport

/// Echoes what it reads.
private final class Echo: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }
}

/// A tunnel's stream as a channel, between two real sites on loopback: the ground relayed
/// links stand on (a link's TLS and handshake running inside another tunnel's stream).
@Suite("Tunnel stream channel", .timeLimit(.minutes(3)))
struct TunnelStreamChannelTests {
    /// A pair with one TLS link up; beta answers streams with `accept`.
    private static func pair(
        accept: @escaping @Sendable (TunnelPair, TunnelStreamChannel) -> Void
    ) async throws -> TunnelPair {
        let pair = try TunnelPair()
        try await pair.listen()
        try await pair.dial()
        try await pair.beta.eventLoop.submit {
            pair.beta.onIncomingStream = { [beta = pair.beta] stream, _, _ in
                let channel = TunnelStreamChannel.accepted(stream, on: beta)
                // Decided later on the loop, as a site does: bytes arriving meanwhile wait.
                beta.eventLoop.execute { accept(pair, channel) }
                return channel
            }
        }.get()
        return pair
    }

    private static func random(_ count: Int) -> ByteBuffer {
        ByteBuffer(bytes: randomBytes(count))
    }

    @Test("TLS runs inside a stream: 8 MiB echoed through it arrive whole")
    func tlsInsideAStream() async throws {
        let pair = try await Self.pair { pair, channel in
            let alpha = pair.alphaIdentity.fingerprint
            try! channel.activate { channel in
                try channel.pipeline.syncOperations.addHandler(pair.betaSite.tls.makeServerHandler { $0 == alpha })
                try channel.pipeline.syncOperations.addHandler(Echo())
            }
        }
        let total = 8 << 20
        let payload = Self.random(total)
        let expected = payload.withUnsafeReadableBytes { Array(SHA256.hash(data: $0)).hexEncoded }
        let collector = ChannelCollector(expected: total, on: pair.alpha.eventLoop)
        let channel = try await pair.alpha.eventLoop.submit {
            try TunnelStreamChannel.open(on: pair.alpha, appName: "weft.test", target: nil) { channel in
                try channel.pipeline.syncOperations.addHandler(
                    pair.alphaSite.tls.makeClientHandler(expecting: pair.betaIdentity.fingerprint))
                try channel.pipeline.syncOperations.addHandler(collector)
            }
        }.get()
        // Written in pieces as a link would, whatever the channel's writability.
        for start in stride(from: 0, to: total, by: 256 << 10) {
            let piece = payload.getSlice(at: start, length: min(256 << 10, total - start))!
            try await channel.writeAndFlush(piece).get()
        }
        #expect(try await collector.done.futureResult.get() == expected)
        try await channel.close().get()
        #expect(try await collector.inactive.futureResult.get() == total)
        try await pair.shutdown()
    }

    @Test("a reader that holds its reads holds the writer: the sending channel turns unwritable")
    func backpressure() async throws {
        let held = NIOLockedValueBox<TunnelStreamChannel?>(nil)
        let total = 16 << 20
        let collector = NIOLockedValueBox<ChannelCollector?>(nil)
        let pair = try await Self.pair { _, channel in
            let made = ChannelCollector(expected: total, on: channel.eventLoop)
            collector.withLockedValue { $0 = made }
            try! channel.activate { channel in
                try channel.pipeline.syncOperations.addHandler(made)
            }
            channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in
                held.withLockedValue { $0 = channel }
            }
        }
        let sender = try await pair.alpha.eventLoop.submit {
            try TunnelStreamChannel.open(on: pair.alpha, appName: "weft.test", target: nil) { _ in }
        }.get()
        let payload = Self.random(256 << 10)
        var written = 0
        var sawUnwritable = false
        // Writes until the tunnel says stop (it holds a bounded amount for a stream that is
        // not read), then lets the reader read.
        while written < total {
            if !sender.isWritable {
                sawUnwritable = true
                break
            }
            try await sender.writeAndFlush(payload).get()
            written += payload.readableBytes
            try await Task.sleep(for: .milliseconds(2))
        }
        #expect(sawUnwritable, "16 MiB went into a stream nobody read")
        #expect(written < total)
        let reader = try #require(await Self.eventually { held.withLockedValue { $0 } })
        try await reader.setOption(ChannelOptions.autoRead, value: true).get()
        // The rest goes once the reader reads.
        while written < total {
            try await sender.writeAndFlush(payload).get()
            written += payload.readableBytes
        }
        let made = try #require(collector.withLockedValue { $0 })
        _ = try await made.done.futureResult.get()
        #expect(made.count == total)
        try await sender.close().get()
        try await pair.shutdown()
    }

    @Test("the peer's reset closes the channel with an error; a close finishes after the last byte")
    func endings() async throws {
        let accepted = NIOLockedValueBox<[TunnelStreamChannel]>([])
        let pair = try await Self.pair { _, channel in
            try! channel.activate { _ in }
            accepted.withLockedValue { $0.append(channel) }
        }
        // Reset by the peer.
        let first = try await pair.alpha.eventLoop.submit {
            try TunnelStreamChannel.open(on: pair.alpha, appName: "weft.test", target: nil) { _ in }
        }.get()
        try await first.writeAndFlush(ByteBuffer(string: "hello")).get()
        let far = try #require(await Self.eventually { accepted.withLockedValue { $0.first } })
        try await pair.beta.eventLoop.submit {
            pair.beta.reset(far.stream!, code: .notAllowed, message: "test")
        }.get()
        try await first.closeFuture.get()
        let error = try await pair.alpha.eventLoop.submit { first.closeError }.get()
        #expect("\(error.map { "\($0)" } ?? "none")".contains("reset"))

        // A close after a write: the peer reads the bytes, then sees the end.
        let collector = ChannelCollector(expected: 5, on: pair.beta.eventLoop)
        let second = try await pair.alpha.eventLoop.submit {
            try TunnelStreamChannel.open(on: pair.alpha, appName: "weft.test", target: nil) { _ in }
        }.get()
        let far2 = try #require(await Self.eventually { accepted.withLockedValue { $0.count == 2 ? $0[1] : nil } })
        try await pair.beta.eventLoop.submit { try far2.pipeline.syncOperations.addHandler(collector) }.get()
        second.write(ByteBuffer(string: "world"), promise: nil)
        try await second.close().get()
        #expect(try await collector.inactive.futureResult.get() == 5)
        try await far2.closeFuture.get()
        try await second.closeFuture.get()
        // Both ends are gone from both tunnels.
        let gone = await Self.eventually {
            let alpha = try await pair.alpha.eventLoop.submit { pair.alpha.streamCount }.get()
            let beta = try await pair.beta.eventLoop.submit { pair.beta.streamCount }.get()
            return alpha == 0 && beta == 0 ? true : nil
        }
        #expect(gone == true)
        try await pair.shutdown()
    }

    /// `probe`'s first non-nil answer, asked every 10 ms for up to a minute.
    private static func eventually<T>(_ probe: () async throws -> T?) async -> T? {
        for _ in 0..<6_000 {
            if let value = try? await probe() { return value }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return try? await probe()
    }
}
