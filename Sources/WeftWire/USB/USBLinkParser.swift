import NIOCore

/// Reads a USB link's bulk transfers back into events (see `USBLinkFrame`), one transfer at a
/// time, as the reader's reads complete.
///
/// Every field is the peer's word and is checked before it is used: the magic, the kind, the
/// zero byte, and each length against what is left of the transfer (so nothing is allocated or
/// read on its say). Frames of another session are stale bytes of an earlier link: they are
/// dropped and counted. A zero-length transfer says nothing.
public struct USBLinkParser: Sendable {
    /// The link's session: chosen by the host before it opens; learned by the gadget from `open`.
    public private(set) var session: UInt32?
    public let maxTransfer: Int
    /// Whether this end is the gadget, which takes `open` (of any session: a new link replaces
    /// the old one); the host takes `accept` of its own session only.
    public let isGadget: Bool
    /// Frames dropped because they belong to another link.
    public private(set) var staleFrames = 0

    public init(hostSession session: UInt32, maxTransfer: Int) {
        self.session = session
        self.maxTransfer = USBLinkFrame.transferSize(maxTransfer)
        self.isGadget = false
    }

    public init(gadgetWithMaxTransfer maxTransfer: Int) {
        self.session = nil
        self.maxTransfer = USBLinkFrame.transferSize(maxTransfer)
        self.isGadget = true
    }

    /// The events of one completed transfer, in order.
    public mutating func parse(transfer: ByteBuffer) throws(WireError) -> [USBLinkFrame.Event] {
        guard transfer.readableBytes <= maxTransfer else {
            throw WireError(.limitExceeded, field: "USB transfer length")
        }
        var transfer = transfer
        var events: [USBLinkFrame.Event] = []
        while transfer.readableBytes > 0 {
            guard transfer.readableBytes >= USBLinkFrame.headerSize,
                let magic = transfer.readInteger(as: UInt16.self),
                let kind = transfer.readInteger(as: UInt8.self),
                let zero = transfer.readInteger(as: UInt8.self),
                let frameSession = transfer.readInteger(as: UInt32.self),
                let length = transfer.readInteger(as: UInt32.self)
            else { throw WireError(.truncated, field: "USB frame header") }
            guard magic == USBLinkFrame.magic else { throw WireError(.invalidValue, field: "USB frame magic") }
            guard USBLinkFrame.Kind.known.contains(kind) else {
                throw WireError(.invalidValue, field: "USB frame kind")
            }
            guard zero == 0 else { throw WireError(.invalidValue, field: "USB frame reserved byte") }
            guard length <= UInt32(transfer.readableBytes) else {
                throw WireError(.truncated, field: "USB frame payload (a transfer cut short)")
            }
            let payload = transfer.readSlice(length: Int(length))!
            if let event = try take(USBLinkFrame.Kind(kind), session: frameSession, payload: payload) {
                events.append(event)
            }
        }
        return events
    }

    private mutating func take(
        _ kind: USBLinkFrame.Kind, session frameSession: UInt32, payload: ByteBuffer
    ) throws(WireError) -> USBLinkFrame.Event? {
        switch kind {
        case .open:
            guard isGadget else { throw WireError(.invalidValue, field: "USB frame kind (open sent to the host)") }
            try Self.checkVersion(payload)
            session = frameSession
            staleFrames = 0
            return .open(session: frameSession)
        case .accept:
            guard !isGadget else { throw WireError(.invalidValue, field: "USB frame kind (accept sent to the gadget)") }
            guard frameSession == session else {
                staleFrames += 1
                return nil
            }
            try Self.checkVersion(payload)
            return .accept(session: frameSession)
        default:
            guard let session, frameSession == session else {
                staleFrames += 1
                return nil
            }
            switch kind {
            case .data: return payload.readableBytes > 0 ? .data(payload) : nil
            case .close: return .close
            default: return nil
            }
        }
    }

    private static func checkVersion(_ payload: ByteBuffer) throws(WireError) {
        guard payload.readableBytes == 1, let version = payload.getInteger(at: payload.readerIndex, as: UInt8.self)
        else {
            throw WireError(.invalidValue, field: "USB link version")
        }
        guard version == USBLinkFrame.version else { throw WireError(.unsupportedVersion, field: "USB link version") }
    }
}
