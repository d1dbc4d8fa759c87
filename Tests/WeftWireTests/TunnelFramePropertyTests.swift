import NIOCore
import PropertyBased
import Testing

@testable import WeftWire

/// Generators of valid frames of every kind, for the property tests below.
///
/// Names (site, app, target) are generated within their limits, since the serializer sends them
/// as they are; reasons (refuse, reset, goodbye) are often longer than their limit, so the
/// serializer's truncation is exercised, and `FrameGen.afterTruncation` says what comes out.
private enum FrameGen {
    static let maxDataChunk = TunnelFrameLimits.default.maxDataChunk

    /// Integers with their edges (lowest, highest, small values) more likely than uniform.
    static func integer<T: FixedWidthInteger & Sendable>(
        _ range: ClosedRange<T> = T.min...T.max
    ) -> Generator<T, AnySequence<(index: Int, value: T)>> {
        let smallTop =
            range.upperBound - range.lowerBound > 255 ? range.lowerBound + 255 : range.upperBound
        return Gen<T>.frequency([
            (1, Gen.always(range.lowerBound).eraseToAnySequence()),
            (1, Gen.always(range.upperBound).eraseToAnySequence()),
            (2, Gen<T>.value(in: range.lowerBound...smallTop).eraseToAnySequence()),
            (4, Gen<T>.value(in: range).eraseToAnySequence()),
        ])
    }

    /// Scalars of every UTF-8 width, and combining marks that make characters of several scalars.
    static let scalar = Gen<Unicode.Scalar>.oneOf(
        Gen<Unicode.Scalar>.unicodeScalar(in: "\u{0}"..."\u{7F}"),
        Gen<Unicode.Scalar>.unicodeScalar(in: "\u{80}"..."\u{7FF}"),
        Gen<Unicode.Scalar>.unicodeScalar(in: "\u{800}"..."\u{D7FF}"),
        Gen<Unicode.Scalar>.unicodeScalar(in: "\u{E000}"..."\u{FFFF}"),
        Gen<Unicode.Scalar>.unicodeScalar(in: "\u{10000}"..."\u{10FFFF}"),
        Gen<Unicode.Scalar>.unicodeScalar(in: "\u{300}"..."\u{36F}"),
    )

    typealias TextGenerator = Generator<
        String, Generator<Unicode.Scalar, AnySequence<(index: Int, value: Any)>>.ArrayShrink
    >

    static func text(scalars count: ClosedRange<Int>) -> TextGenerator {
        scalar.array(of: count).map { scalars in
            var text = ""
            text.unicodeScalars.append(contentsOf: scalars)
            return text
        }
    }

    /// A name that fits `limit` bytes as generated (cut on a character boundary if need be).
    static func name(limit: Int, scalars: ClosedRange<Int> = 0...120) -> TextGenerator {
        // Without the characters names may not hold (their refusal is tested on its own).
        text(scalars: scalars).map { text in
            var safe = ""
            safe.unicodeScalars.append(contentsOf: text.unicodeScalars.filter { !WireText.isUnsafe($0) })
            return fitted(safe, limit)
        }
    }

    /// Reasons up to 300 scalars: often over the 255-byte limit.
    static let reason = text(scalars: 0...300)

    static let chunkLength = Gen<Int>.frequency([
        (6, Gen.int(in: 0...64).eraseToAnySequence()),
        (2, Gen.int(in: 0...maxDataChunk).eraseToAnySequence()),
        (1, Gen.always(maxDataChunk).eraseToAnySequence()),
    ])

    static let data = zip(chunkLength, Gen.uint64()).map { length, seed in
        ByteBuffer(bytes: pseudoRandomBytes(count: length, seed: seed))
    }

    static let hello = zip(
        integer(UInt16.min...UInt16.max), integer(UInt16.min...UInt16.max), name(limit: TunnelFrameLimits.siteName),
        integer(UInt64.min...UInt64.max), Gen.uint8().array(of: LinkHello.tunnelIDLength),
        integer(UInt32.min...UInt32.max), integer(UInt32.min...UInt32.max)
    ).map { value in
        TunnelFrame.hello(
            LinkHello(
                minVersion: min(value.0, value.1), maxVersion: max(value.0, value.1), siteName: value.2,
                incarnation: value.3, tunnelID: value.4, linkID: value.5, capabilities: value.6))
    }

    static let welcome = zip(
        integer(UInt16.min...UInt16.max), name(limit: TunnelFrameLimits.siteName), integer(UInt64.min...UInt64.max),
        integer(UInt32.min...UInt32.max)
    ).map { value in
        TunnelFrame.welcome(
            LinkWelcome(version: value.0, siteName: value.1, incarnation: value.2, capabilities: value.3))
    }

    static let refuse = zip(integer(UInt16.min...UInt16.max), reason).map { code, message in
        TunnelFrame.refuse(LinkRefuse(reason: .init(code: code), message: message))
    }

    /// A client address of either family, or none.
    static let origin = zip(
        integer(0...2), integer(UInt8.min...UInt8.max), integer(UInt16.min...UInt16.max),
        integer(UInt16.min...UInt16.max)
    ).map { value -> StreamOrigin? in
        guard value.0 > 0 else { return nil }
        let family: StreamOrigin.Family = value.0 == 1 ? .ipv4 : .ipv6
        let address = (0..<family.addressLength).map { UInt8(truncatingIfNeeded: Int($0) &* 37 &+ Int(value.1)) }
        return StreamOrigin(
            family: family, sourceAddress: address, sourcePort: value.2, destinationAddress: address.reversed(),
            destinationPort: value.3)
    }

    static let streamOpen = zip(
        integer(1...UInt32.max), name(limit: TunnelFrameLimits.appName),
        name(limit: TunnelFrameLimits.target, scalars: 1...150).optional,
        integer(UInt32.min...UInt32.max), origin, Gen.bool
    ).map { value in
        // A target that fits nothing (one character over the limit) is sent as none.
        TunnelFrame.streamOpen(
            StreamOpen(
                streamID: value.0, appName: value.1, target: value.2 == "" ? nil : value.2, initialWindow: value.3,
                origin: value.4, datagrams: value.5))
    }

    /// Offsets, final sizes and limits up to the protocol's bound (past it is a refusal, tested
    /// on its own).
    static let streamOffset = integer(UInt64.min...WireProtocol.maxStreamOffset)

    static let streamData = zip(integer(1...UInt32.max), streamOffset, Gen.bool, data).map {
        value in
        // The parser refuses data whose end does not fit in 64 bits.
        let offset = min(value.1, WireProtocol.maxStreamOffset - UInt64(value.3.readableBytes))
        return TunnelFrame.streamData(StreamData(streamID: value.0, offset: offset, fin: value.2, data: value.3))
    }

    static let streamReset = zip(
        integer(UInt32.min...UInt32.max), integer(UInt16.min...UInt16.max), streamOffset, reason
    ).map { value in
        TunnelFrame.streamReset(
            StreamReset(streamID: value.0, code: .init(rawValue: value.1), finalSize: value.2, message: value.3))
    }

    static let windowUpdate = zip(integer(UInt32.min...UInt32.max), streamOffset).map {
        stream, limit in
        TunnelFrame.windowUpdate(WindowUpdate(streamID: stream, limit: limit))
    }

    static let goodbye = zip(Gen.bool, reason).map { tunnel, message in
        TunnelFrame.goodbye(Goodbye(tunnel: tunnel, message: message))
    }

    /// Any valid frame; data frames are the most common, as on a real link.
    static let frame = Gen<TunnelFrame>.frequency([
        (1, hello.eraseToAny()),
        (1, welcome.eraseToAny()),
        (1, refuse.eraseToAny()),
        (2, streamOpen.eraseToAny()),
        (4, streamData.eraseToAny()),
        (2, streamReset.eraseToAny()),
        (2, windowUpdate.eraseToAny()),
        (1, integer(UInt64.min...UInt64.max).map(TunnelFrame.ack).eraseToAny()),
        (1, integer(UInt64.min...UInt64.max).map(TunnelFrame.ping).eraseToAny()),
        (1, integer(UInt64.min...UInt64.max).map(TunnelFrame.pong).eraseToAny()),
        (1, goodbye.eraseToAny()),
        (1, Gen.bool.map { TunnelFrame.linkPolicy(LinkPolicy(blocked: $0)) }.eraseToAny()),
    ])

    static let frames = frame.array(of: 0...10)

    static let frameTypes: [TunnelFrameType] = [
        .hello, .welcome, .refuse, .streamOpen, .streamData, .streamReset, .windowUpdate, .ack, .ping, .pong,
        .goodbye, .linkPolicy,
    ]

    static let frameType = Gen<TunnelFrameType?>.element(of: frameTypes).map { $0! }

    /// The longest prefix of whole characters of `text` that fits in `limit` bytes of UTF-8.
    static func fitted(_ text: String, _ limit: Int) -> String {
        var end = text.startIndex
        for index in text.indices {
            let next = text.index(after: index)
            guard text.utf8.distance(from: text.startIndex, to: next) <= limit else { break }
            end = next
        }
        return String(text[..<end])
    }

    /// What the parser gives back for `frame`: reasons cut to their limit, an empty target as none.
    static func afterTruncation(_ frame: TunnelFrame) -> TunnelFrame {
        switch frame {
        case .refuse(var refuse):
            refuse.message = fitted(refuse.message, TunnelFrameLimits.reason)
            return .refuse(refuse)
        case .streamReset(var reset):
            reset.message = fitted(reset.message, TunnelFrameLimits.reason)
            return .streamReset(reset)
        case .goodbye(var goodbye):
            goodbye.message = fitted(goodbye.message, TunnelFrameLimits.reason)
            return .goodbye(goodbye)
        case .streamOpen(var open) where open.target == "":
            open.target = nil
            return .streamOpen(open)
        default:
            return frame
        }
    }

    /// Cheap filler for data frames (xorshift64*), so large chunks cost little to generate.
    static func pseudoRandomBytes(count: Int, seed: UInt64) -> [UInt8] {
        var state = seed | 1
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        while bytes.count < count {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            var word = state &* 0x2545_F491_4F6C_DD1D
            for _ in 0..<min(8, count - bytes.count) {
                bytes.append(UInt8(truncatingIfNeeded: word))
                word >>= 8
            }
        }
        return bytes
    }
}

@Suite(
    "tunnel frames, property-based: round trips, incomplete input, hostile bytes, the payload limit",
    .timeLimit(.minutes(10)))
struct TunnelFramePropertyTests {
    func encoded(_ frames: [TunnelFrame]) -> [UInt8] {
        var buffer = ByteBuffer()
        for frame in frames { TunnelFrameSerializer().serialize(frame, into: &buffer) }
        return Array(buffer.readableBytesView)
    }

    /// Every frame the parser has complete; a thrown error is recorded as an issue.
    func drain(_ parser: inout TunnelFrameParser) -> [TunnelFrame] {
        var out: [TunnelFrame] = []
        do {
            while let frame = try parser.nextFrame() { out.append(frame) }
        } catch {
            Issue.record("the parser threw \(error)")
        }
        return out
    }

    /// Frames until nil or the first error, as a link reads them (an error breaks the link).
    func parseUntilError(_ parser: inout TunnelFrameParser) -> (frames: [TunnelFrame], error: WireError?) {
        var out: [TunnelFrame] = []
        do {
            while let frame = try parser.nextFrame() { out.append(frame) }
        } catch {
            return (out, error)
        }
        return (out, nil)
    }

    @Test("any frames, serialized back to back and cut at random points, parse back to the same frames, then nil")
    func chunkedRoundTrip() async {
        await propertyCheck(count: 200, input: FrameGen.frames, Gen.int(in: 0...Int.max).array(of: 0...16)) {
            frames, rawCuts in
            let bytes = encoded(frames)
            let cuts = Set(rawCuts.map { $0 % (bytes.count + 1) }).union([0, bytes.count]).sorted()
            var parser = TunnelFrameParser()
            var out: [TunnelFrame] = []
            for (from, to) in Swift.zip(cuts, cuts.dropFirst()) {
                parser.append(ByteBuffer(bytes: bytes[from..<to]))
                out += drain(&parser)
            }
            #expect(out == frames.map(FrameGen.afterTruncation))
            #expect(drain(&parser).isEmpty)
            #expect(parser.bufferedBytes == 0)
        }
    }

    @Test("any frame re-serialized after parsing gives the same bytes")
    func canonicalBytes() async {
        await propertyCheck(count: 300, input: FrameGen.frame) { frame in
            var parser = TunnelFrameParser()
            parser.append(ByteBuffer(bytes: encoded([frame])))
            let parsed = drain(&parser)
            #expect(parsed == [FrameGen.afterTruncation(frame)])
            #expect(encoded(parsed) == encoded([FrameGen.afterTruncation(frame)]))
        }
    }

    @Test("reasons over the limit are cut to the longest whole-character prefix that fits")
    func reasonTruncation() async {
        await propertyCheck(count: 300, input: FrameGen.reason) { message in
            var parser = TunnelFrameParser()
            parser.append(ByteBuffer(bytes: encoded([.goodbye(Goodbye(tunnel: false, message: message))])))
            guard case .goodbye(let goodbye)? = drain(&parser).first else {
                Issue.record("no goodbye came back")
                return
            }
            let sent = Array(message.utf8)
            let received = Array(goodbye.message.utf8)
            #expect(received.count <= TunnelFrameLimits.reason)
            #expect(sent.starts(with: received))
            if received.count < sent.count {
                // Cut on a character boundary, and the next character would not have fitted.
                let boundaries = message.indices.map { message.utf8.distance(from: message.startIndex, to: $0) }
                #expect(boundaries.contains(received.count))
                let next = boundaries.first { $0 > received.count } ?? sent.count
                #expect(next > TunnelFrameLimits.reason)
            }
        }
    }

    @Test("every strict prefix of a frame is incomplete: nil, never an error or a frame; the rest completes it")
    func strictPrefixes() async {
        await propertyCheck(count: 200, input: FrameGen.frame, Gen.int(in: 0...Int.max).array(of: 8)) {
            frame, rawLengths in
            let bytes = encoded([frame])
            // Every prefix of a small frame; the header, the fixed fields and random cuts of a large one.
            let lengths =
                bytes.count <= 256
                ? Array(0..<bytes.count)
                : Array(0..<64) + rawLengths.map { $0 % bytes.count } + [bytes.count - 1]
            for length in lengths {
                var parser = TunnelFrameParser()
                parser.append(ByteBuffer(bytes: bytes[..<length]))
                #expect(parseUntilError(&parser) == ([], nil), "prefix of \(length) of \(bytes.count) bytes")
                #expect(parser.bufferedBytes == length)
                parser.append(ByteBuffer(bytes: bytes[length...]))
                #expect(drain(&parser) == [FrameGen.afterTruncation(frame)], "rest after \(length) bytes")
            }
        }
    }

    /// Hostile input: random bytes, valid headers over random payloads, and mutated valid frames.
    static let hostileBytes = Gen<[UInt8]>.oneOf(
        Gen.uint8().array(of: 0...64),
        zip(FrameGen.frameType, Gen.uint8(), Gen.uint8().array(of: 0...48)).map { type, flags, payload in
            [type.rawValue, flags] + withUnsafeBytes(of: UInt32(payload.count).bigEndian, Array.init) + payload
        },
        zip(FrameGen.frameType, Gen.uint8(), Gen.uint32(in: 0...64), Gen.uint8().array(of: 0...48)).map {
            type, flags, length, payload in
            [type.rawValue, flags] + withUnsafeBytes(of: length.bigEndian, Array.init) + payload
        },
        zip(FrameGen.frame, zip(Gen.int(in: 0...Int.max), Gen.uint8(in: 1...255)).array(of: 1...4)).map {
            frame, flips in
            var buffer = ByteBuffer()
            TunnelFrameSerializer().serialize(frame, into: &buffer)
            var bytes = Array(buffer.readableBytesView)
            // Flip bits in the header and the fields before the data, where the parser decides.
            for (position, bits) in flips { bytes[position % min(bytes.count, 80)] ^= bits }
            return bytes
        },
    )
    .array(of: 1...4)
    .map { $0.flatMap { $0 } }

    @Test("random and mutated bytes never crash the parser; whatever it accepts re-serializes to the same frame")
    func hostileInput() async {
        await propertyCheck(count: 500, input: Self.hostileBytes, Gen.int(in: 1...64)) { bytes, chunk in
            var parser = TunnelFrameParser()
            var accepted: [TunnelFrame] = []
            var offset = 0
            while offset < bytes.count {
                let end = min(bytes.count, offset + chunk)
                parser.append(ByteBuffer(bytes: bytes[offset..<end]))
                offset = end
                let (frames, error) = parseUntilError(&parser)
                accepted += frames
                if error != nil { break }  // The link is broken; nothing more is read.
            }
            for frame in accepted {
                var again = TunnelFrameParser()
                again.append(ByteBuffer(bytes: encoded([frame])))
                #expect(drain(&again) == [frame])
                #expect(again.bufferedBytes == 0)
            }
        }
    }

    @Test("a header announcing more than maxPayload is refused as soon as the header is in, before any payload")
    func payloadLimit() async {
        let maxPayload = Gen<Int>.frequency([
            (1, Gen.always(TunnelFrameLimits.default.maxPayload).eraseToAnySequence()),
            (1, Gen.int(in: 0...70_000).eraseToAnySequence()),
        ])
        await propertyCheck(
            count: 300, input: FrameGen.frameType, Gen.uint8(), maxPayload, Gen.uint32(), Gen.uint8().array(of: 0...16)
        ) { type, flags, maxPayload, raw, partialPayload in
            let limits = TunnelFrameLimits(maxPayload: maxPayload, maxDataChunk: min(maxPayload, 64 << 10))
            let excess = UInt32.max - UInt32(maxPayload)
            let length = UInt32(maxPayload) + 1 + raw % excess
            let header = [type.rawValue, flags] + withUnsafeBytes(of: length.bigEndian, Array.init)
            var parser = TunnelFrameParser(limits: limits)
            for byte in header.dropLast() {
                parser.append(ByteBuffer(bytes: [byte]))
                #expect(parseUntilError(&parser) == ([], nil), "an incomplete header is not judged")
            }
            parser.append(ByteBuffer(bytes: [header.last!] + partialPayload))
            #expect(throws: WireError(.limitExceeded, field: "frame length")) { try parser.nextFrame() }
        }
    }
}
