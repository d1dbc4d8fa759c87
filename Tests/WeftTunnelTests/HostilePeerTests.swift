import NIOCore
import Testing
import WeftWire

@testable import WeftTunnel

/// A member of the mesh speaks to the engine with values no honest peer sends. The engine must
/// answer by closing that link (with a reason), keep every other stream and link, and never trap.
@Suite("a hostile peer on a link: it loses the link, the site loses nothing else", .timeLimit(.minutes(10)))
struct HostilePeerTests {
    /// An engine that opens odd streams, with the hostile peer on link 1.
    struct Victim {
        var engine: TunnelEngine
        var now = Duration.seconds(100)
        let link = LinkID(1)

        init() {
            engine = TunnelEngine(options: .init(opensOddStreams: true), now: now)
            _ = engine.linkUp(link, now: now)
        }

        /// The peer's frames, serialized as a hostile peer would (the serializer writes any value).
        mutating func receive(_ frames: [TunnelFrame], on link: LinkID? = nil) -> [TunnelAction] {
            var bytes = ByteBuffer()
            for frame in frames { TunnelFrameSerializer().serialize(frame, into: &bytes) }
            now += .milliseconds(1)
            return engine.received(bytes, on: link ?? self.link, now: now)
        }

        func closeReason(_ actions: [TunnelAction], link: LinkID? = nil) -> TunnelFailure? {
            for case .closeLink(let closed, let reason) in actions where closed == (link ?? self.link) { return reason }
            return nil
        }
    }

    static let beyondCredit = TunnelFailure(.protocolViolation, "the peer sent beyond the tunnel's credit")

    static func data(_ stream: UInt32, at offset: UInt64, _ bytes: [UInt8] = [1], fin: Bool = false) -> TunnelFrame {
        .streamData(StreamData(streamID: stream, offset: offset, fin: fin, data: ByteBuffer(bytes: bytes)))
    }

    @Test("a byte on each of two streams, then a reset with final size 2^64-1: the link is closed, the engine lives on")
    func resetFinalSizeOverflow() {
        var victim = Victim()
        _ = victim.receive([.streamOpen(StreamOpen(streamID: 2, appName: "web", target: nil, initialWindow: 1 << 16))])
        // Two bytes counted for the tunnel, one for stream 2: 2 + (2^64-1 - 1) overflows.
        _ = victim.receive([Self.data(2, at: 0), Self.data(4, at: 0)])
        let actions = victim.receive([
            .streamReset(StreamReset(streamID: 2, code: .cancelled, finalSize: .max, message: "boom"))
        ])
        let reason = victim.closeReason(actions)
        #expect(reason?.code == .malformedFrame && reason?.message.contains("reset final size") == true, "\(actions)")
        // The engine still works: a new link joins and a stream opens on it.
        _ = victim.engine.linkUp(LinkID(2), now: victim.now)
        let (id, opened) = victim.engine.openStream(appName: "app", now: victim.now)
        #expect(id == StreamID(1))
        #expect(opened.contains { if case .write(LinkID(2), _) = $0 { true } else { false } })
    }

    @Test("a reset whose final size the parser allows but the tunnel never granted closes the link")
    func resetBeyondCredit() {
        var victim = Victim()
        _ = victim.receive([Self.data(2, at: 0)])
        let actions = victim.receive([
            .streamReset(StreamReset(streamID: 2, code: .cancelled, finalSize: WireProtocol.maxStreamOffset))
        ])
        #expect(victim.closeReason(actions) == Self.beyondCredit, "\(actions)")
        // So does one for a stream never seen (settled from zero).
        var fresh = Victim()
        let unseen = fresh.receive([
            .streamReset(StreamReset(streamID: 4, code: .cancelled, finalSize: WireProtocol.maxStreamOffset - 1))
        ])
        #expect(fresh.closeReason(unseen) == Self.beyondCredit, "\(unseen)")
    }

    @Test("data at an offset near 2^64 (or past 2^62) closes the link")
    func dataOffsetOverflow() {
        for offset in [UInt64.max, UInt64.max - 1, WireProtocol.maxStreamOffset, 1 << 63] {
            var victim = Victim()
            let actions = victim.receive([Self.data(2, at: offset, [1, 2, 3])])
            let reason = victim.closeReason(actions)
            #expect(
                reason?.code == .malformedFrame && reason?.message.contains("data offset") == true,
                "offset \(offset): \(actions)")
        }
        // Inside the bound, but far past the credit: the credit check refuses it.
        var victim = Victim()
        let actions = victim.receive([Self.data(2, at: WireProtocol.maxStreamOffset - 3, [1, 2, 3])])
        #expect(victim.closeReason(actions) == Self.beyondCredit, "\(actions)")
    }

    @Test("window updates of 2^64-1 are refused by the parser; 2^62 is a harmless large credit")
    func hugeWindow() {
        var victim = Victim()
        let actions = victim.receive([.windowUpdate(WindowUpdate(streamID: 0, limit: .max))])
        let reason = victim.closeReason(actions)
        #expect(reason?.code == .malformedFrame && reason?.message.contains("window limit") == true, "\(actions)")
        var other = Victim()
        let (id, _) = other.engine.openStream(appName: "web", now: other.now)
        let granted = other.receive([
            .windowUpdate(WindowUpdate(streamID: 0, limit: WireProtocol.maxStreamOffset)),
            .windowUpdate(WindowUpdate(streamID: id.rawValue, limit: WireProtocol.maxStreamOffset)),
        ])
        #expect(other.closeReason(granted) == nil, "\(granted)")
        let sent = other.engine.send(ByteBuffer(bytes: [1, 2, 3]), on: id, now: other.now)
        #expect(sent.contains { if case .write = $0 { true } else { false } })
    }

    @Test("stream ids of UInt32.max from the peer, and this side's own ids used up, never trap")
    func streamIDLimits() {
        var victim = Victim()
        // The highest even id (the peer's parity), then the highest id at all (this side's parity).
        _ = victim.receive([
            .streamOpen(StreamOpen(streamID: UInt32.max - 1, appName: "web", target: nil, initialWindow: 1024))
        ])
        let odd = victim.receive([
            .streamOpen(StreamOpen(streamID: UInt32.max, appName: "web", target: nil, initialWindow: 1024))
        ])
        #expect(victim.closeReason(odd) == nil)
        #expect(victim.engine.isOpen(StreamID(UInt32.max - 1)))
        #expect(!victim.engine.isOpen(StreamID(UInt32.max)))

        // This side's ids: the last one is refused and the tunnel ends, so a new one starts.
        var full = Victim()
        full.engine.nextLocalStream = UInt32.max
        let (_, actions) = full.engine.openStream(appName: "web", now: full.now)
        #expect(actions.contains { if case .tunnelFailed = $0 { true } else { false } }, "\(actions)")
        #expect(actions.contains { if case .streamReset(_, .limitReached, _) = $0 { true } else { false } })
    }

    @Test("a million single bytes scattered over a stream's window: that stream is reset, nothing else")
    func scatteredPieces() {
        var victim = Victim()
        _ = victim.receive([.streamOpen(StreamOpen(streamID: 2, appName: "web", target: nil, initialWindow: 1 << 16))])
        _ = victim.receive([.streamOpen(StreamOpen(streamID: 4, appName: "web", target: nil, initialWindow: 1 << 16))])
        var reset: String?
        var sent = 0
        // Every other byte of the window, in frames of 64 pieces: the engine stops it long before.
        outer: for batch in 0..<(1_000_000 / 64) {
            let frames = (0..<64).map { Self.data(2, at: UInt64(2 * (batch * 64 + $0) + 1)) }
            sent += frames.count
            for case .streamReset(StreamID(2), _, let message) in victim.receive(frames) {
                reset = message
                break outer
            }
        }
        #expect(reset?.contains("pieces") == true, "no reset after \(sent) pieces")
        #expect(sent <= ReassemblyBuffer.defaultMaxPieces + 64, "\(sent)")
        // Stream 4 and the link are untouched.
        let actions = victim.receive([Self.data(4, at: 0, [1, 2, 3])])
        #expect(victim.closeReason(actions) == nil)
        #expect(actions.contains { if case .deliver(StreamID(4), _) = $0 { true } else { false } }, "\(actions)")
    }

    @Test("pieces scattered over many streams: the tunnel-wide cap resets the stream past it, memory stays bounded")
    func scatteredOverStreams() {
        var victim = Victim()
        let perTunnel = victim.engine.options.configuration.maxOutOfOrderPiecesPerTunnel
        let perStream = 1000  // under the per-stream cap, so only the tunnel-wide one can stop it
        var resets: [(StreamID, String)] = []
        var stream: UInt32 = 2
        while resets.isEmpty && stream < 2 * 200 {
            _ = victim.receive([
                .streamOpen(StreamOpen(streamID: stream, appName: "web", target: nil, initialWindow: 1 << 16))
            ])
            for batch in 0..<(perStream / 50) {
                let frames = (0..<50).map { Self.data(stream, at: UInt64(2 * (batch * 50 + $0) + 1)) }
                for case .streamReset(let id, .limitReached, let message) in victim.receive(frames) {
                    resets.append((id, message))
                }
            }
            #expect(victim.engine.heldPieces <= perTunnel)
            stream += 2
        }
        #expect(resets.count == 1 && resets.first?.1.contains("together") == true, "\(resets)")
        // The reset stream's pieces went with it; the others still hold theirs.
        let expected = (Int(stream / 2) - 2) * perStream
        #expect(victim.engine.heldPieces == expected, "\(victim.engine.heldPieces) vs \(expected)")
        // A gap filled on an older stream delivers, and frees its pieces from the count.
        let before = victim.engine.heldPieces
        let filled = victim.receive((0..<perStream).map { Self.data(2, at: UInt64(2 * $0)) })
        #expect(filled.contains { if case .deliver(StreamID(2), _) = $0 { true } else { false } })
        #expect(victim.engine.heldPieces == before - perStream, "\(victim.engine.heldPieces) vs \(before)")
        // Resets from the peer free theirs too, down to nothing.
        for id in Swift.stride(from: UInt32(4), to: stream, by: 2) {
            _ = victim.receive([
                .streamReset(StreamReset(streamID: id, code: .cancelled, finalSize: 2 * UInt64(perStream)))
            ])
        }
        #expect(victim.engine.heldPieces == 0)
    }

    @Test("a peer that never reads: its full link gets no frame, pong or ack, and is closed after the stall limit")
    func neverReads() {
        var victim = Victim()
        let other = LinkID(2)
        _ = victim.engine.linkUp(other, now: victim.now)
        let (id, _) = victim.engine.openStream(appName: "web", now: victim.now)
        _ = victim.receive([
            .windowUpdate(WindowUpdate(streamID: 0, limit: WireProtocol.maxStreamOffset)),
            .windowUpdate(WindowUpdate(streamID: id.rawValue, limit: WireProtocol.maxStreamOffset)),
        ])
        _ = victim.engine.linkWritabilityChanged(victim.link, writable: false, now: victim.now)
        func written(_ actions: [TunnelAction], on link: LinkID) -> Int {
            actions.reduce(0) { total, action in
                if case .write(link, let bytes) = action { total + bytes.readableBytes } else { total }
            }
        }
        // App data goes to the other link only; pings and data from the peer get no pong or ack.
        var toFull = 0
        var toOther = 0
        for round in 0..<200 {
            var actions = victim.engine.send(ByteBuffer(repeating: 7, count: 16 << 10), on: id, now: victim.now)
            actions += victim.receive([
                .ping(UInt64(round + 1)),
                .streamData(
                    StreamData(
                        streamID: 2, offset: UInt64(round) * 100, fin: false, data: ByteBuffer(repeating: 1, count: 100)
                    )),
            ])
            victim.now += .milliseconds(20)
            actions += victim.engine.timerFired(now: victim.now)
            toFull += written(actions, on: victim.link)
            toOther += written(actions, on: other)
            _ = victim.engine.received(ByteBuffer(), on: other, now: victim.now)
            if victim.closeReason(actions) != nil { break }
        }
        #expect(toFull == 0, "\(toFull) bytes went to the full link")
        #expect(toOther > 0)
        // Past the stall limit (the peer still sends, so it is not silent): the link is closed.
        var closed: TunnelFailure?
        for _ in 0..<1000 where closed == nil {
            victim.now += .milliseconds(100)
            _ = victim.engine.received(ByteBuffer(), on: other, now: victim.now)
            let actions = victim.receive([.ping(1)])
            closed = victim.closeReason(actions) ?? victim.closeReason(victim.engine.timerFired(now: victim.now))
        }
        #expect(closed?.code == .stalled, "\(String(describing: closed))")
        #expect(victim.engine.linkIDs == [other])
    }

    @Test("a full link whose peer acknowledges now and then is slow, not stalled; once the acks stop, it is")
    func slowIsNotStalled() {
        var victim = Victim()
        let (id, _) = victim.engine.openStream(appName: "web", now: victim.now)
        // Ten frames in flight on the link, then it fills up.
        for _ in 0..<10 { _ = victim.engine.send(ByteBuffer(repeating: 7, count: 1000), on: id, now: victim.now) }
        _ = victim.engine.linkWritabilityChanged(victim.link, writable: false, now: victim.now)
        var closed: TunnelFailure?
        var acked: UInt64 = 1
        var lastAck = victim.now
        // An ack every 5 s for 40 s (steps of 500 ms): never 10 s without progress.
        for step in 1...80 where closed == nil {
            victim.now += .milliseconds(500)
            var frames: [TunnelFrame] = [.ping(1)]
            if step % 10 == 0 && acked < 10 {
                acked += 1
                frames.append(.ack(acked))
                lastAck = victim.now
            }
            closed =
                victim.closeReason(victim.receive(frames))
                ?? victim.closeReason(victim.engine.timerFired(now: victim.now))
        }
        #expect(closed == nil, "a link that kept acknowledging was closed: \(String(describing: closed))")
        // The acks stop (the pings go on, so it is not silent): the stall limit ends it.
        for _ in 0..<120 where closed == nil {
            victim.now += .milliseconds(500)
            closed =
                victim.closeReason(victim.receive([.ping(1)]))
                ?? victim.closeReason(victim.engine.timerFired(now: victim.now))
        }
        #expect(closed?.code == .stalled, "\(String(describing: closed))")
        #expect(victim.now - lastAck >= .seconds(10), "closed \(victim.now - lastAck) after the last ack")
    }

    @Test("a full link that drains is used again: the ack it owes goes out at once")
    func drainsAgain() {
        var victim = Victim()
        _ = victim.engine.linkWritabilityChanged(victim.link, writable: false, now: victim.now)
        _ = victim.receive([
            .streamOpen(StreamOpen(streamID: 2, appName: "web", target: nil, initialWindow: 1 << 16)),
            Self.data(2, at: 0, [UInt8](repeating: 1, count: 8 << 10)),
        ])
        victim.now += .milliseconds(100)
        let whileFull = victim.engine.timerFired(now: victim.now)
        #expect(!whileFull.contains { if case .write = $0 { true } else { false } }, "\(whileFull)")
        let drained = victim.engine.linkWritabilityChanged(victim.link, writable: true, now: victim.now)
        var parser = TunnelFrameParser(limits: .default)
        for case .write(victim.link, let bytes) in drained { parser.append(bytes) }
        var acked: UInt64?
        while let frame = try? parser.nextFrame() { if case .ack(let count) = frame { acked = count } }
        #expect(acked == 2, "\(drained)")
    }
}

@Suite("stream origins: sent only to a peer that reads them", .timeLimit(.minutes(10)))
struct StreamOriginEngineTests {
    static let origin = StreamOrigin(
        family: .ipv4, sourceAddress: [198, 18, 0, 9], sourcePort: 40000, destinationAddress: [127, 0, 0, 1],
        destinationPort: 8080)!

    /// The stream open an engine writes when its peer said `capabilities`.
    func sentOpen(peerCapabilities: UInt32) throws -> StreamOpen? {
        var engine = TunnelEngine(options: .init(opensOddStreams: true), now: .seconds(1))
        _ = engine.linkUp(LinkID(1), now: .seconds(1), peerCapabilities: peerCapabilities)
        let (_, actions) = engine.openStream(appName: "web", origin: Self.origin, now: .seconds(1))
        var parser = TunnelFrameParser()
        for case .write(_, let bytes) in actions { parser.append(bytes) }
        while let frame = try parser.nextFrame() {
            if case .streamOpen(let open) = frame { return open }
        }
        return nil
    }

    @Test("a peer that said streamOrigins gets the origin; an older one gets an open it can parse")
    func capability() throws {
        #expect(try sentOpen(peerCapabilities: LinkHello.streamOrigins)?.origin == Self.origin)
        let old = try #require(try sentOpen(peerCapabilities: LinkHello.linkPolicyFrames))
        #expect(old.origin == nil && old.appName == "web")
    }

    @Test("a UDP client's stream is flagged to a peer that said datagramStreams, and never opened to an older one")
    func datagrams() throws {
        var engine = TunnelEngine(options: .init(opensOddStreams: true), now: .seconds(1))
        _ = engine.linkUp(LinkID(1), now: .seconds(1), peerCapabilities: LinkHello.streamOrigins)
        #expect(!engine.peerTakesDatagrams)
        let (old, refused) = engine.openStream(appName: "dns", datagrams: true, now: .seconds(1))
        #expect(refused.count == 1)
        guard case .streamReset(old, .notExposed, let message)? = refused.first else {
            Issue.record("not reset: \(refused)")
            return
        }
        #expect(message.contains("without UDP apps"))
        #expect(!refused.contains { if case .write = $0 { true } else { false } })
        // A TCP stream to the same peer still opens, with the id the refused one never sent:
        // refusals use up no ids (the peer would have to remember each one skipped).
        let (tcp, opened) = engine.openStream(appName: "web", now: .seconds(1))
        #expect(tcp == old)
        #expect(opened.contains { if case .write = $0 { true } else { false } })

        var current = TunnelEngine(options: .init(opensOddStreams: true), now: .seconds(1))
        _ = current.linkUp(
            LinkID(1), now: .seconds(1), peerCapabilities: LinkHello.streamOrigins | LinkHello.datagramStreams)
        let (_, actions) = current.openStream(appName: "dns", datagrams: true, now: .seconds(1))
        var parser = TunnelFrameParser()
        for case .write(_, let bytes) in actions { parser.append(bytes) }
        var sent: StreamOpen?
        while let frame = try parser.nextFrame() { if case .streamOpen(let open) = frame { sent = open } }
        #expect(sent?.datagrams == true && sent?.appName == "dns")

        // And the receiving engine says so with the stream.
        var receiver = TunnelEngine(options: .init(opensOddStreams: false), now: .seconds(1))
        _ = receiver.linkUp(LinkID(1), now: .seconds(1))
        var bytes = ByteBuffer()
        TunnelFrameSerializer().serialize(.streamOpen(try #require(sent)), into: &bytes)
        #expect(
            receiver.received(bytes, on: LinkID(1), now: .seconds(2)).contains(
                .incomingStream(StreamID(1), appName: "dns", target: nil, origin: nil, datagrams: true)))
    }

    @Test("the receiving engine hands the origin to its driver with the stream")
    func delivered() {
        var engine = TunnelEngine(options: .init(opensOddStreams: false), now: .seconds(1))
        _ = engine.linkUp(LinkID(1), now: .seconds(1))
        var bytes = ByteBuffer()
        TunnelFrameSerializer().serialize(
            .streamOpen(StreamOpen(streamID: 1, appName: "web", initialWindow: 1 << 16, origin: Self.origin)),
            into: &bytes)
        let actions = engine.received(bytes, on: LinkID(1), now: .seconds(2))
        #expect(
            actions.contains(
                .incomingStream(StreamID(1), appName: "web", target: nil, origin: Self.origin, datagrams: false)))
    }
}
