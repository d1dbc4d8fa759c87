import NIOCore

/// Turns a USB link's stream into bulk transfers (see `USBLinkFrame`): each at most
/// `maxTransfer` bytes and never a multiple of `maxPacketSize`, so every transfer ends with a
/// short packet and the reader's read completes at once.
public struct USBLinkSerializer: Sendable {
    public let session: UInt32
    public let maxTransfer: Int
    public let maxPacketSize: Int

    /// `maxTransfer` is clamped to `USBLinkFrame.transferSizes`; `maxPacketSize` is the bulk
    /// endpoint's (64 at full speed, 512 at high speed, 1024 at super speed).
    public init(session: UInt32, maxTransfer: Int, maxPacketSize: Int) {
        self.session = session
        self.maxTransfer = USBLinkFrame.transferSize(maxTransfer)
        // USB packet sizes are powers of two (8 to 1024); anything else is taken down to one.
        let size = max(maxPacketSize, 8)
        self.maxPacketSize = 1 << (Int.bitWidth - 1 - size.leadingZeroBitCount)
    }

    /// The most stream bytes one transfer carries: a header, and room for a pad frame if the
    /// transfer would otherwise end on a packet boundary.
    public var maxPayload: Int { maxTransfer - 2 * USBLinkFrame.headerSize }

    /// The transfers that carry `bytes`, in order.
    public func transfers(carrying bytes: ByteBuffer) -> [ByteBuffer] {
        var bytes = bytes
        var transfers: [ByteBuffer] = []
        while bytes.readableBytes > 0 {
            let piece = bytes.readSlice(length: min(bytes.readableBytes, maxPayload))!
            var transfer = ByteBuffer()
            transfer.reserveCapacity(piece.readableBytes + 2 * USBLinkFrame.headerSize)
            Self.writeFrame(.data, session: session, payload: piece, into: &transfer)
            endWithShortPacket(&transfer)
            transfers.append(transfer)
        }
        return transfers
    }

    /// The host's first transfer on a new link.
    public func open() -> ByteBuffer { control(.open, payload: ByteBuffer(integer: USBLinkFrame.version)) }

    /// The gadget's answer to `open`.
    public func accept() -> ByteBuffer { control(.accept, payload: ByteBuffer(integer: USBLinkFrame.version)) }

    /// The link's last transfer.
    public func close() -> ByteBuffer { control(.close, payload: ByteBuffer()) }

    private func control(_ kind: USBLinkFrame.Kind, payload: ByteBuffer) -> ByteBuffer {
        var transfer = ByteBuffer()
        Self.writeFrame(kind, session: session, payload: payload, into: &transfer)
        endWithShortPacket(&transfer)
        return transfer
    }

    /// A header-only pad frame (12 bytes, never a multiple of a packet size: 8 or more, a power of
    /// two) moves a transfer off a packet boundary.
    private func endWithShortPacket(_ transfer: inout ByteBuffer) {
        if transfer.readableBytes % maxPacketSize == 0 {
            Self.writeFrame(.pad, session: session, payload: ByteBuffer(), into: &transfer)
        }
    }

    static func writeFrame(
        _ kind: USBLinkFrame.Kind, session: UInt32, payload: ByteBuffer, into transfer: inout ByteBuffer
    ) {
        transfer.writeInteger(USBLinkFrame.magic)
        transfer.writeInteger(kind.rawValue)
        transfer.writeInteger(UInt8(0))
        transfer.writeInteger(session)
        transfer.writeInteger(UInt32(payload.readableBytes))
        var payload = payload
        transfer.writeBuffer(&payload)
    }
}
