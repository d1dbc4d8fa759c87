import NIOCore

/// Frames datagrams for a datagram stream: `u16 length | payload` each (`DatagramFrameParser`
/// reads them back).
public struct DatagramFrameSerializer: Sendable {
    public init() {}

    /// Appends `datagram`, framed, to `buffer`; false (and nothing written) when it is larger
    /// than any UDP datagram.
    @discardableResult
    public func serialize(_ datagram: ByteBuffer, into buffer: inout ByteBuffer) -> Bool {
        let length = datagram.readableBytes
        guard length <= DatagramFrameParser.maxDatagram else { return false }
        buffer.reserveCapacity(minimumWritableBytes: 2 + length)
        buffer.writeInteger(UInt16(length))
        var datagram = datagram
        buffer.writeBuffer(&datagram)
        return true
    }
}
