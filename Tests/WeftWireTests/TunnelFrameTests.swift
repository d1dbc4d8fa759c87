import NIOCore
import Testing

@testable import WeftWire

@Suite("tunnel frames: round trips, split and drip-fed input, hard limits", .timeLimit(.minutes(10)))
struct TunnelFrameTests {
    static let frames: [TunnelFrame] = [
        .hello(
            LinkHello(
                minVersion: 1,
                maxVersion: 1,
                siteName: "site-a",
                incarnation: 0x0102_0304_0506_0708,
                tunnelID: Array(0..<16),
                linkID: 7,
                capabilities: 3
            )
        ),
        .welcome(LinkWelcome(version: 1, siteName: "site-ß", incarnation: 99, capabilities: 0)),
        .refuse(LinkRefuse(reason: .unknownTunnel, message: "restarted")),
        .streamOpen(StreamOpen(streamID: 1, appName: "web", initialWindow: 262_144)),
        .streamOpen(StreamOpen(streamID: 3, appName: "vdi", target: "tcp:10.0.2.7:5900", initialWindow: 1)),
        .streamOpen(
            StreamOpen(
                streamID: 5, appName: "web", initialWindow: 9,
                origin: StreamOrigin(
                    family: .ipv4, sourceAddress: [198, 18, 0, 7], sourcePort: 51234,
                    destinationAddress: [127, 0, 0, 1], destinationPort: 8080))),
        .streamOpen(
            StreamOpen(
                streamID: 7, appName: "vdi", target: "tcp:10.0.2.7:5900", initialWindow: 1,
                origin: StreamOrigin(
                    family: .ipv6, sourceAddress: [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1],
                    sourcePort: 1, destinationAddress: Array(repeating: 0, count: 15) + [1], destinationPort: 65535))),
        .streamOpen(StreamOpen(streamID: 9, appName: "dns", initialWindow: 1 << 16, datagrams: true)),
        .streamOpen(
            StreamOpen(
                streamID: 11, appName: "dns", target: "udp:10.0.2.7:53", initialWindow: 1,
                origin: StreamOrigin(
                    family: .ipv4, sourceAddress: [198, 18, 0, 7], sourcePort: 5353,
                    destinationAddress: [127, 0, 0, 1], destinationPort: 53),
                datagrams: true)),
        .streamData(StreamData(streamID: 1, offset: 0, fin: false, data: ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n"))),
        .streamData(StreamData(streamID: 1, offset: 1 << 40, fin: true, data: ByteBuffer())),
        .streamReset(StreamReset(streamID: 5, code: .notExposed, message: "no app \"x\"")),
        .windowUpdate(WindowUpdate(streamID: 0, limit: 1 << 33)),
        .ack(12345),
        .ping(1),
        .pong(.max),
        .goodbye(Goodbye(tunnel: true, message: "stopping")),
        .goodbye(Goodbye(tunnel: false, message: "")),
    ]

    func encoded(_ frames: [TunnelFrame]) -> ByteBuffer {
        var buffer = ByteBuffer()
        for frame in frames { TunnelFrameSerializer().serialize(frame, into: &buffer) }
        return buffer
    }

    /// The first frame of `frame` serialized and parsed back.
    func parsed(_ frame: TunnelFrame) throws -> TunnelFrame? {
        var parser = TunnelFrameParser()
        parser.append(encoded([frame]))
        return try parser.nextFrame()
    }

    func parseAll(_ parser: inout TunnelFrameParser) throws -> [TunnelFrame] {
        var out: [TunnelFrame] = []
        while let frame = try parser.nextFrame() { out.append(frame) }
        return out
    }

    @Test("every frame round-trips")
    func roundTrip() throws {
        var parser = TunnelFrameParser()
        parser.append(encoded(Self.frames))
        #expect(try parseAll(&parser) == Self.frames)
        #expect(parser.bufferedBytes == 0)
    }

    @Test("split at every byte position, the same frames come out")
    func splitEverywhere() throws {
        let bytes = Array(encoded(Self.frames).readableBytesView)
        for cut in 0...bytes.count {
            var parser = TunnelFrameParser()
            var out: [TunnelFrame] = []
            parser.append(ByteBuffer(bytes: bytes[0..<cut]))
            out += try parseAll(&parser)
            parser.append(ByteBuffer(bytes: bytes[cut...]))
            out += try parseAll(&parser)
            #expect(out == Self.frames, "cut at \(cut)")
        }
    }

    @Test("drip-fed one byte at a time, the same frames come out")
    func dripFed() throws {
        var parser = TunnelFrameParser()
        var out: [TunnelFrame] = []
        for byte in encoded(Self.frames).readableBytesView {
            parser.append(ByteBuffer(bytes: [byte]))
            out += try parseAll(&parser)
        }
        #expect(out == Self.frames)
    }

    @Test("reliability: data, opens, resets and window updates are reliable; the rest are not")
    func reliability() {
        let reliable = Self.frames.filter(\.isReliable).count
        #expect(reliable == 10)  // six opens, two data, a reset, a window update
    }

    @Test("a header announcing more than the limit is refused before the payload arrives")
    func lengthLimit() {
        var parser = TunnelFrameParser(limits: .init(maxPayload: 1024, maxDataChunk: 512))
        parser.append(ByteBuffer(bytes: [TunnelFrameType.streamData.rawValue, 0, 0, 0, 0x04, 0x01]))
        #expect(throws: WireError(.limitExceeded, field: "frame length")) { try parser.nextFrame() }
    }

    @Test("a data chunk over the limit is refused")
    func dataLimit() {
        var buffer = ByteBuffer()
        let data = StreamData(streamID: 1, offset: 0, fin: false, data: ByteBuffer(repeating: 1, count: 600))
        TunnelFrameSerializer().serialize(.streamData(data), into: &buffer)
        var parser = TunnelFrameParser(limits: .init(maxPayload: 1024, maxDataChunk: 512))
        parser.append(buffer)
        #expect(throws: WireError(.limitExceeded, field: "data length")) { try parser.nextFrame() }
    }

    @Test("unknown types, trailing bytes, bad magic, stream 0 and offset overflow are refused")
    func malformed() {
        func parse(_ bytes: [UInt8]) throws(WireError) -> TunnelFrame? {
            var parser = TunnelFrameParser()
            parser.append(ByteBuffer(bytes: bytes))
            return try parser.nextFrame()
        }
        #expect(throws: WireError(.invalidValue, field: "frame type")) { try parse([0x7f, 0, 0, 0, 0, 0]) }
        #expect(throws: WireError(.trailingBytes, field: "ack frame")) {
            try parse([0x20, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1, 0xff])
        }
        #expect(throws: WireError(.truncated, field: "ack")) { try parse([0x20, 0, 0, 0, 0, 4, 0, 0, 0, 1]) }
        #expect(throws: WireError(.invalidValue, field: "hello magic")) {
            try parse([0x01, 0, 0, 0, 0, 4, 0x48, 0x54, 0x54, 0x50])
        }
        #expect(throws: WireError(.invalidValue, field: "data stream")) {
            try parse([0x11, 0, 0, 0, 0, 12] + [0, 0, 0, 0] + [0, 0, 0, 0, 0, 0, 0, 0])
        }
        #expect(throws: WireError(.limitExceeded, field: "data offset")) {
            try parse([0x11, 0, 0, 0, 0, 13] + [0, 0, 0, 1] + Array(repeating: 0xff, count: 8) + [1])
        }
        // An open whose origin names a family other than 4 or 6, or stops short, or that has
        // origin bytes without the flag (what an older parser sees).
        let open: [UInt8] = [0, 0, 0, 1] + [3] + Array("web".utf8) + [0, 0] + [0, 0, 0, 9]
        let origin: [UInt8] = [4, 198, 18, 0, 7, 127, 0, 0, 1, 0xc8, 0x22, 0x1f, 0x90]
        #expect(throws: WireError(.invalidValue, field: "origin family")) {
            try parse([0x10, 1, 0, 0, 0, UInt8(open.count + origin.count)] + open + [5] + origin.dropFirst())
        }
        #expect(throws: WireError(.truncated, field: "origin destination port")) {
            try parse([0x10, 1, 0, 0, 0, UInt8(open.count + origin.count - 1)] + open + origin.dropLast())
        }
        #expect(throws: WireError(.trailingBytes, field: "streamOpen frame")) {
            try parse([0x10, 0, 0, 0, 0, UInt8(open.count + origin.count)] + open + origin)
        }
        let parsed = try? parse([0x10, 1, 0, 0, 0, UInt8(open.count + origin.count)] + open + origin)
        guard case .streamOpen(let opened) = parsed, let client = opened.origin else {
            Issue.record("no origin in \(String(describing: parsed))")
            return
        }
        #expect(client.sourceAddress == [198, 18, 0, 7] && client.sourcePort == 51234)
        #expect(client.destinationAddress == [127, 0, 0, 1] && client.destinationPort == 8080)
    }

    @Test("offsets, final sizes and limits past 2^62 are refused; at 2^62 they parse")
    func streamOffsetBound() throws {
        let bound = WireProtocol.maxStreamOffset
        let atBound: [TunnelFrame] = [
            .streamData(StreamData(streamID: 1, offset: bound - 1, fin: false, data: ByteBuffer(bytes: [7]))),
            .streamReset(StreamReset(streamID: 1, code: .cancelled, finalSize: bound)),
            .windowUpdate(WindowUpdate(streamID: 0, limit: bound)),
        ]
        for frame in atBound { #expect(try parsed(frame) == frame) }
        for (frame, field) in [
            (
                TunnelFrame.streamData(
                    StreamData(streamID: 1, offset: bound, fin: false, data: ByteBuffer(bytes: [7]))), "data offset"
            ),
            (
                .streamData(StreamData(streamID: 1, offset: .max - 1, fin: true, data: ByteBuffer(bytes: [7]))),
                "data offset"
            ),
            (.streamReset(StreamReset(streamID: 1, code: .cancelled, finalSize: bound + 1)), "reset final size"),
            (.streamReset(StreamReset(streamID: 1, code: .cancelled, finalSize: .max)), "reset final size"),
            (.windowUpdate(WindowUpdate(streamID: 3, limit: .max)), "window limit"),
        ] {
            #expect(throws: WireError(.limitExceeded, field: field)) { try parsed(frame) }
        }
    }

    @Test("site, app and target names with control characters are refused; reasons are kept as text")
    func controlCharactersInNames() throws {
        let hostile = "web\u{1b}]0;owned\u{7}"
        let hello = LinkHello(
            minVersion: 1, maxVersion: 1, siteName: "a\nb", incarnation: 1,
            tunnelID: Array(repeating: 0, count: LinkHello.tunnelIDLength), linkID: 1, capabilities: 0)
        #expect(throws: WireError(.invalidValue, field: "hello site")) { try parsed(.hello(hello)) }
        #expect(throws: WireError(.invalidValue, field: "open app")) {
            try parsed(.streamOpen(StreamOpen(streamID: 1, appName: hostile, initialWindow: 1)))
        }
        #expect(throws: WireError(.invalidValue, field: "open target")) {
            try parsed(
                .streamOpen(StreamOpen(streamID: 1, appName: "lan", target: "tcp:10.0.0.1:22\r\n", initialWindow: 1)))
        }
        // A reason is free text: it parses, and the log escapes it where it is printed.
        let reset = TunnelFrame.streamReset(StreamReset(streamID: 1, code: .cancelled, message: hostile))
        #expect(try parsed(reset) == reset)
    }

    @Test("a frame announced but not yet sent costs only the bytes that came")
    func announcedNotSent() throws {
        var parser = TunnelFrameParser()
        // A header announcing a 1 MiB data frame, 20 bytes of it, then another tiny read.
        var header: [UInt8] = [0x11, 0, 0, 0x10, 0, 0]
        header += [0, 0, 0, 1] + Array(repeating: 0, count: 8) + Array(repeating: 9, count: 8)
        parser.append(ByteBuffer(bytes: header))
        parser.append(ByteBuffer(bytes: [1]))
        #expect(try parser.nextFrame() == nil)
        #expect(parser.bufferedBytes == header.count + 1)
        #expect(parser.retainedCapacity < 4096, "\(parser.retainedCapacity) bytes held for 27 received")
    }

    @Test("long reasons are cut on a character boundary, never mid-character")
    func longReasons() throws {
        let reason = String(repeating: "é", count: 200)
        var buffer = ByteBuffer()
        TunnelFrameSerializer().serialize(.refuse(LinkRefuse(reason: .tooManyLinks, message: reason)), into: &buffer)
        var parser = TunnelFrameParser()
        parser.append(buffer)
        guard case .refuse(let refuse)? = try parser.nextFrame() else {
            Issue.record("not a refuse")
            return
        }
        #expect(refuse.message.utf8.count == 254)
        #expect(refuse.message.allSatisfy { $0 == "é" })
    }

    @Test("stream data is a slice of the input, not a copy")
    func noCopy() throws {
        var parser = TunnelFrameParser()
        let payload = ByteBuffer(repeating: 7, count: 60_000)
        parser.append(encoded([.streamData(StreamData(streamID: 9, offset: 0, fin: false, data: payload))]))
        guard case .streamData(let data)? = try parser.nextFrame() else {
            Issue.record("not data")
            return
        }
        #expect(data.data == payload)
        #expect(data.data.capacity >= 60_000)
    }
}
