import Logging
import NIOCore
import NIOEmbedded
import Testing
import WeftTunnel
import WeftWire

@testable import WeftTransport

/// The link's channel handlers on `EmbeddedChannel`, without sockets or TLS: bytes in, bytes
/// and events out, time moved by hand.
@Suite("link handlers on an embedded channel", .timeLimit(.minutes(10)))
struct LinkHandlerTests {
    /// A handshake handler on an active embedded channel, and what it reported.
    final class Harness {
        let loop = EmbeddedEventLoop()
        let channel: EmbeddedChannel
        let result: EventLoopPromise<LinkHandshake.Established>
        var outcome: Result<LinkHandshake.Established, any Error>?
        var attached: LinkHandshake.Established?

        init(
            _ machine: LinkHandshake, timeout: TimeAmount = .seconds(5),
            decide: @escaping (LinkHello) -> LinkDecision = { _ in .refuse(.protocolViolation, "dialer") },
            stillWanted: (() -> Bool)? = nil
        ) throws {
            channel = EmbeddedChannel(loop: loop)
            result = loop.makePromise()
            result.futureResult.whenComplete { [unowned self] in self.outcome = $0 }
            let handler = LinkHandshakeHandler(
                machine: machine, timeout: timeout, result: result, decide: decide, stillWanted: stillWanted
            ) { [unowned self] _, established in self.attached = established }
            try channel.connect(to: SocketAddress(ipAddress: "198.18.0.1", port: 4000)).wait()
            try channel.pipeline.syncOperations.addHandler(handler)
        }

        /// Everything the handler wrote so far.
        func written() throws -> ByteBuffer {
            var all = ByteBuffer()
            while var part = try channel.readOutbound(as: ByteBuffer.self) { all.writeBuffer(&part) }
            return all
        }

        var failure: LinkError? {
            if case .failure(let error) = outcome { return error as? LinkError }
            return nil
        }
    }

    static func hello(dialer incarnation: UInt64 = 11, asking peer: UInt64 = LinkHandshake.unknownIncarnation)
        -> ByteBuffer
    {
        var dialer = LinkHandshake(
            role: .dialer(peerSite: "b", peerIncarnation: peer, linkID: 1), siteName: "a", incarnation: incarnation)
        for case .write(let bytes) in dialer.start() { return bytes }
        return ByteBuffer()
    }

    static func frames(_ buffer: ByteBuffer) throws -> [TunnelFrame] {
        var parser = TunnelFrameParser(limits: LinkHandshake.limits)
        parser.append(buffer)
        var frames: [TunnelFrame] = []
        while let frame = try parser.nextFrame() { frames.append(frame) }
        return frames
    }

    @Test("an acceptor fed a hello one byte at a time welcomes it into the chosen half; bytes behind it stay")
    func dripFedHello() throws {
        let harness = try Harness(
            LinkHandshake(role: .acceptor, siteName: "b", incarnation: LinkHandshake.unknownIncarnation),
            decide: { hello in hello.siteName == "a" ? .acceptInto(incarnation: 33) : .refuse(.wrongIdentity, "who?") })
        var input = Self.hello()
        while input.readableBytes > 1 {
            try harness.channel.writeInbound(input.readSlice(length: 1)!)
            #expect(harness.outcome == nil, "decided before the hello was whole")
        }
        // The last byte arrives with the first tunnel bytes behind it: those are the tunnel's.
        input.writeString("tunnel bytes")
        try harness.channel.writeInbound(input)
        let established = try #require(harness.attached)
        #expect(established.localIncarnation == 33 && established.peerIncarnation == 11)
        #expect(String(buffer: established.leftover) == "tunnel bytes")
        guard case .success = harness.outcome else {
            Issue.record("the handshake did not succeed: \(String(describing: harness.outcome))")
            return
        }
        let answer = try Self.frames(try harness.written())
        guard case .welcome(let welcome) = answer.first else {
            Issue.record("expected a welcome, got \(answer)")
            return
        }
        #expect(welcome.incarnation == 33 && welcome.siteName == "b")
        // After the handshake, bytes pass through untouched.
        try harness.channel.writeInbound(ByteBuffer(string: "later"))
        #expect(try harness.channel.readInbound(as: ByteBuffer.self).map { String(buffer: $0) } == "later")
    }

    @Test("a refusal is written, the result fails with the handshake's code, and the link closes")
    func refusal() throws {
        let harness = try Harness(
            LinkHandshake(role: .acceptor, siteName: "b", incarnation: LinkHandshake.unknownIncarnation),
            decide: { _ in .refuse(.wrongIdentity, "not the announced certificate") })
        try harness.channel.writeInbound(Self.hello())
        let answer = try Self.frames(try harness.written())
        #expect(answer == [.refuse(LinkRefuse(reason: .wrongIdentity, message: "not the announced certificate"))])
        #expect(harness.failure?.code == .handshakeFailed, "\(String(describing: harness.outcome))")
        #expect(harness.attached == nil)
        harness.loop.run()
        #expect(!harness.channel.isActive)
    }

    @Test("no hello within the timeout: the result fails with handshakeTimeout and the link closes")
    func timeout() throws {
        let harness = try Harness(
            LinkHandshake(role: .acceptor, siteName: "b", incarnation: LinkHandshake.unknownIncarnation),
            timeout: .seconds(5))
        try harness.channel.writeInbound(Self.hello().getSlice(at: 0, length: 3)!)
        harness.loop.advanceTime(by: .milliseconds(4_999))
        #expect(harness.outcome == nil && harness.channel.isActive)
        harness.loop.advanceTime(by: .milliseconds(1))
        #expect(harness.failure?.code == .handshakeTimeout, "\(String(describing: harness.outcome))")
        #expect(!harness.channel.isActive)
    }

    @Test("a dialer no longer wanted sends nothing and closes; one refused learns the refusal")
    func dialer() throws {
        let unwanted = try Harness(
            LinkHandshake(
                role: .dialer(peerSite: "b", peerIncarnation: 22, linkID: 1), siteName: "a", incarnation: 11),
            stillWanted: { false })
        #expect(try unwanted.written().readableBytes == 0)
        #expect(unwanted.failure?.code == .closed)
        #expect(!unwanted.channel.isActive)

        let refused = try Harness(
            LinkHandshake(
                role: .dialer(peerSite: "b", peerIncarnation: 22, linkID: 1), siteName: "a", incarnation: 11))
        let hello = try Self.frames(try refused.written())
        guard case .hello(let sent) = hello.first else {
            Issue.record("the dialer sent \(hello)")
            return
        }
        #expect(sent.siteName == "a" && sent.incarnation == 11)
        var refusal = ByteBuffer()
        TunnelFrameSerializer().serialize(
            .refuse(LinkRefuse(reason: .unknownTunnel, message: "tunnel 22 is gone here")), into: &refusal)
        try refused.channel.writeInbound(refusal)
        #expect(refused.failure?.code == .refused && refused.failure?.refusal?.reason == .unknownTunnel)
    }

    @Test("LinkHandler feeds the driver: a ping is answered with a pong; a closed link leaves the tunnel")
    func linkHandler() throws {
        let (driver, channel) = try Self.attachedLink(driverLoop: EmbeddedEventLoop())
        #expect(driver.linkCount == 1 && driver.establishedLinks == 1)
        _ = try? channel.readOutbound(as: ByteBuffer.self)  // what the engine sent on link up

        var ping = ByteBuffer()
        TunnelFrameSerializer().serialize(.ping(42), into: &ping)
        try channel.writeInbound(ping)
        var parser = TunnelFrameParser(limits: .default)
        while let bytes = try channel.readOutbound(as: ByteBuffer.self) { parser.append(bytes) }
        var answered = false
        while let frame = try parser.nextFrame() { if frame == .pong(42) { answered = true } }
        #expect(answered)

        try channel.close().wait()
        #expect(driver.linkCount == 0 && driver.establishedLinks == 0)
        #expect(!driver.isEnded, "a tunnel outlives its links")
        driver.close(reason: "test over")
        #expect(driver.isEnded)
    }

    /// A driver on `driverLoop` and one embedded link attached to it, on `linkLoop` (the
    /// driver's loop unless given), with `first` in its pipeline before the driver's handler.
    static func attachedLink(
        driverLoop: EmbeddedEventLoop, linkLoop: EmbeddedEventLoop? = nil, first: ChannelHandler? = nil
    ) throws -> (TunnelDriver, EmbeddedChannel) {
        let driver = TunnelDriver(
            eventLoop: driverLoop, localIncarnation: 1, peerSite: "peer", options: .init(opensOddStreams: true),
            logger: Logger(label: "test"))
        let channel = EmbeddedChannel(loop: linkLoop ?? driverLoop)
        if let first { try channel.pipeline.syncOperations.addHandler(first) }
        try channel.connect(to: SocketAddress(ipAddress: "198.18.0.2", port: 4000)).wait()
        driver.attach(channel, leftover: ByteBuffer())
        return (driver, channel)
    }

    /// Counts the reads the pipeline asks the channel for.
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var reads = 0
        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    @Test(
        "a link on another loop than its driver stops reading while its bytes wait on the hop, and reads again once they are taken"
    )
    func hopBudget() throws {
        let driverLoop = EmbeddedEventLoop()
        let linkLoop = EmbeddedEventLoop()
        let counter = ReadCounter()
        let (driver, channel) = try Self.attachedLink(driverLoop: driverLoop, linkLoop: linkLoop, first: counter)
        driverLoop.run()
        linkLoop.run()

        // Pings, in reads of 64 KiB, until the hop holds more than its budget.
        var pings = ByteBuffer()
        while pings.readableBytes < 64 << 10 { TunnelFrameSerializer().serialize(.ping(1), into: &pings) }
        var sent = 0
        while sent <= LinkHandler.hopBudget {
            try channel.writeInbound(pings)
            sent += pings.readableBytes
        }
        let before = counter.reads
        channel.read()
        #expect(counter.reads == before, "a read went out with \(sent) bytes on the hop")
        // The driver took them in already (an embedded loop runs a hop at once); the link hears
        // of it on its own loop, and only then reads again.
        driverLoop.run()
        #expect(counter.reads == before)
        linkLoop.run()
        #expect(counter.reads == before + 1, "the held read was not issued")
        channel.read()
        #expect(counter.reads == before + 2)
        driver.close(reason: "test over")
        driverLoop.run()
    }

    @Test("LinkHandler passes writability on: a full link answers no ping, a drained one does again")
    func linkWritability() throws {
        let (driver, channel) = try Self.attachedLink(driverLoop: EmbeddedEventLoop())
        _ = try? channel.readOutbound(as: ByteBuffer.self)

        func pongs(after ping: UInt64) throws -> [UInt64] {
            var bytes = ByteBuffer()
            TunnelFrameSerializer().serialize(.ping(ping), into: &bytes)
            try channel.writeInbound(bytes)
            var parser = TunnelFrameParser(limits: .default)
            while let written = try channel.readOutbound(as: ByteBuffer.self) { parser.append(written) }
            var answered: [UInt64] = []
            while let frame = try parser.nextFrame() { if case .pong(let value) = frame { answered.append(value) } }
            return answered
        }
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(try pongs(after: 1) == [], "a full link must not be given a pong")
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(try pongs(after: 2) == [2])
        driver.close(reason: "test over")
    }
}
