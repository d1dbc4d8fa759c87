import NIOCore
import Testing

@testable import WeftTunnel

@Suite("reassembly: in order, once, whatever the arrival order")
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
