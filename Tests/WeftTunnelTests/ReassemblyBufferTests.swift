import NIOCore
import Testing

@testable import WeftTunnel

@Suite("reassembly: in order, once, whatever the arrival order", .timeLimit(.minutes(10)))
struct ReassemblyBufferTests {
    static let data: [UInt8] = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 * 31 + $0 / 7) }

    func segment(_ range: Range<Int>) -> ByteBuffer { ByteBuffer(bytes: Self.data[range]) }

    @Test("segments in any order, with duplicates and overlaps, come out once and in order", arguments: 0..<50)
    func shuffled(seed: Int) throws {
        var generator = SeededGenerator(seed: UInt64(seed) + 1)
        var cuts = Set([0, Self.data.count])
        for _ in 0..<20 { cuts.insert(Int.random(in: 1..<Self.data.count, using: &generator)) }
        let points = cuts.sorted()
        var segments = zip(points, points.dropFirst()).map { $0.0..<$0.1 }
        // Duplicates and overlapping re-sends, as after a link loss.
        for _ in 0..<10 {
            let start = Int.random(in: 0..<Self.data.count - 1, using: &generator)
            segments.append(start..<min(Self.data.count, start + Int.random(in: 1...900, using: &generator)))
        }
        segments.shuffle(using: &generator)
        var buffer = ReassemblyBuffer()
        var out: [UInt8] = []
        for range in segments {
            for chunk in try buffer.insert(
                offset: UInt64(range.lowerBound), data: segment(range), fin: range.upperBound == Self.data.count)
            {
                out += chunk.readableBytesView
            }
        }
        #expect(out == Self.data)
        #expect(buffer.isComplete)
        #expect(buffer.bufferedBytes == 0)
    }

    @Test("data beyond the end, or a second different end, is refused")
    func finalOffset() throws {
        var buffer = ReassemblyBuffer()
        _ = try buffer.insert(offset: 0, data: segment(0..<10), fin: true)
        #expect(throws: ReassemblyBuffer.InsertError.finalOffsetViolation) {
            _ = try buffer.insert(offset: 5, data: self.segment(5..<20), fin: false)
        }
        #expect(throws: ReassemblyBuffer.InsertError.finalOffsetViolation) {
            _ = try buffer.insert(offset: 0, data: self.segment(0..<5), fin: true)
        }
    }

    @Test("a byte held out of order does not keep its 32 KiB read buffer alive")
    func smallSlicesAreCopied() throws {
        var buffer = ReassemblyBuffer()
        var read = ByteBufferAllocator().buffer(capacity: 32 << 10)
        read.writeBytes(Array(repeating: 7, count: 32 << 10))
        let oneByte = read.getSlice(at: 100, length: 1)!
        _ = try buffer.insert(offset: 10, data: oneByte, fin: false)
        // What comes out later is a buffer of its own, not a view into the 32 KiB.
        let out = try buffer.insert(offset: 0, data: segment(0..<10), fin: false)
        #expect(out.count == 2 && out[1].readableBytes == 1)
        #expect(out[1].storageCapacity < 1024, "\(out[1].storageCapacity)")
        // A slice that is most of its read buffer is kept as it is (no copy for big frames).
        var big = ByteBufferAllocator().buffer(capacity: 16 << 10)
        big.writeBytes(Array(repeating: 1, count: 16 << 10))
        _ = try buffer.insert(offset: 20_000, data: big.getSlice(at: 0, length: 15 << 10)!, fin: false)
        #expect(buffer.heldPieces == 1 && buffer.bufferedBytes == 15 << 10)
    }

    @Test("bytes that continue a held piece join it: an honest stream holds one piece per gap")
    func continuingPiecesMerge() throws {
        var buffer = ReassemblyBuffer()
        for start in stride(from: 100, to: 5_000, by: 10) {
            _ = try buffer.insert(offset: UInt64(start), data: segment(start..<start + 10), fin: false)
        }
        #expect(buffer.heldPieces == 1 && buffer.bufferedBytes == 4_900)
        let out = try buffer.insert(offset: 0, data: segment(0..<100), fin: false)
        #expect(Array(out.map(\.readableBytesView).joined()) == Array(Self.data[0..<5_000]))
        #expect(buffer.heldPieces == 0 && buffer.bufferedBytes == 0)
    }

    @Test("a peer that scatters single bytes over the window is stopped at maxPieces")
    func scatteredBytes() throws {
        var buffer = ReassemblyBuffer(maxPieces: 64)
        for index in 0..<64 {
            _ = try buffer.insert(offset: UInt64(2 * index + 2), data: segment(0..<1), fin: false)
        }
        #expect(buffer.heldPieces == 64)
        #expect(throws: ReassemblyBuffer.InsertError.tooManyPieces) {
            _ = try buffer.insert(offset: 1_000, data: self.segment(0..<1), fin: false)
        }
        // Filling a gap is never refused: it joins the piece before it.
        #expect(try buffer.insert(offset: 3, data: segment(0..<1), fin: false).isEmpty)
        #expect(buffer.heldPieces == 64 && buffer.bufferedBytes == 65)
    }
}

/// A small deterministic generator (SplitMix64), so every seed replays the same case.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
