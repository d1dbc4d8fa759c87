import NIOCore

/// Splits a datagram stream's bytes back into datagrams: `u16 length | payload`, again and
/// again. A UDP app's stream carries its datagrams this way (`StreamOpen.datagrams`).
///
/// Bytes arrive in whatever pieces the tunnel delivers; the parser keeps an incomplete frame
/// until the rest comes, and never holds more than one frame's worth. The length is the
/// peer's word: a length over `limit` is refused before anything is read or allocated for it.
public struct DatagramFrameParser: Sendable {
    /// The largest payload a UDP datagram over IPv4 can carry.
    public static let maxDatagram = 65_507

    public let limit: Int
    private var buffer = ByteBuffer()

    public init(limit: Int = DatagramFrameParser.maxDatagram) {
        self.limit = min(max(limit, 0), Self.maxDatagram)
    }

    /// Bytes held for a frame not yet complete.
    public var pendingBytes: Int { buffer.readableBytes }

    /// Takes the next bytes of the stream.
    public mutating func append(_ bytes: ByteBuffer) {
        if buffer.readableBytes == 0 {
            buffer = bytes
        } else {
            var bytes = bytes
            buffer.writeBuffer(&bytes)
        }
    }

    /// The next whole datagram, or nil until more bytes come.
    public mutating func next() throws(WireError) -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) else { return nil }
        guard Int(length) <= limit else { throw WireError(.limitExceeded, field: "datagram length") }
        guard buffer.readableBytes >= 2 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 2)
        let datagram = buffer.readSlice(length: Int(length))!
        if buffer.readableBytes == 0 {
            buffer.clear()
        } else if buffer.readerIndex > 1 << 16 {
            buffer.discardReadBytes()
        }
        return datagram
    }
}
