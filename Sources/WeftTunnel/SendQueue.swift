import NIOCore

/// App bytes of one stream waiting to be framed, kept as the buffers the app handed over.
///
/// One growing `ByteBuffer` would not do: frames in flight hold slices of it, so every append
/// would copy the whole storage. Here a frame is a slice of the first buffer when it is big
/// enough (no copy), and only small leftovers are joined.
struct SendQueue {
    private var buffers = CircularBuffer<ByteBuffer>()
    private(set) var readableBytes = 0

    mutating func append(_ buffer: ByteBuffer) {
        guard buffer.readableBytes > 0 else { return }
        buffers.append(buffer)
        readableBytes += buffer.readableBytes
    }

    /// Bytes in the first buffer: a frame cut there is a slice, not a copy.
    var firstBufferBytes: Int { buffers.first?.readableBytes ?? 0 }

    /// Takes the next `length` bytes (at most `readableBytes`).
    mutating func read(length: Int) -> ByteBuffer {
        precondition(length <= readableBytes)
        readableBytes -= length
        if buffers.first.map({ $0.readableBytes >= length }) ?? (length == 0) {
            guard length > 0 else { return ByteBuffer() }
            let slice = buffers[buffers.startIndex].readSlice(length: length)!
            if buffers.first!.readableBytes == 0 { buffers.removeFirst() }
            return slice
        }
        var joined = ByteBuffer()
        joined.reserveCapacity(length)
        var needed = length
        while needed > 0 {
            var first = buffers.removeFirst()
            let take = min(needed, first.readableBytes)
            var part = first.readSlice(length: take)!
            joined.writeBuffer(&part)
            needed -= take
            if first.readableBytes > 0 { buffers.prepend(first) }
        }
        return joined
    }
}
