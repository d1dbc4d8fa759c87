import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The bytes a speed test sends: a fixed pseudo-random sequence that repeats every `period`
/// bytes (a prime, so it never lines up with chunk or frame sizes). The far end knows it too,
/// so it checks every byte it receives against the byte expected at that offset.
public struct SpeedtestPattern: Sendable {
    /// The built-in app every site serves to its peers (a sink; it sends nothing but a result).
    public static let appName = "weft.speedtest"
    public static let period = 65_521
    public static let chunk = 32 << 10

    /// One period plus a chunk: any chunk is a slice of it, whatever its offset.
    private let block: ByteBuffer

    public init() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var bytes = [UInt8](repeating: 0, count: Self.period + Self.chunk)
        for index in 0..<Self.period {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            bytes[index] = UInt8(truncatingIfNeeded: state >> 24)
        }
        for index in 0..<Self.chunk { bytes[Self.period + index] = bytes[index] }
        block = ByteBuffer(bytes: bytes)
    }

    /// `length` (at most `chunk`) bytes of the sequence from `offset`, without copying.
    public func slice(at offset: UInt64, length: Int = SpeedtestPattern.chunk) -> ByteBuffer {
        block.getSlice(at: Int(offset % UInt64(Self.period)), length: min(length, Self.chunk))!
    }

    /// Whether `bytes` are the sequence from `offset`.
    public func matches(_ bytes: ByteBuffer, at offset: UInt64) -> Bool {
        bytes.withUnsafeReadableBytes { received in
            block.withUnsafeReadableBytes { expected in
                var done = 0
                while done < received.count {
                    let start = Int((offset + UInt64(done)) % UInt64(Self.period))
                    let run = min(received.count - done, Self.period - start)
                    if memcmp(received.baseAddress! + done, expected.baseAddress! + start, run) != 0 { return false }
                    done += run
                }
                return true
            }
        }
    }
}
