import NIOCore

/// How a link's byte stream rides on a USB cable's two bulk endpoints (`transportProtocol: usb`).
///
/// Bulk pipes are reliable and ordered, but they move *transfers*, and a transfer ends only at a
/// packet shorter than the endpoint's `wMaxPacketSize`. So the writer sends whole transfers of at
/// most `maxTransfer` bytes, none a multiple of the packet size, and the reader reads with
/// buffers of `maxTransfer`: each read then completes with exactly one transfer, without waiting
/// for a zero-length packet, and a transfer is the unit everything below is checked in.
///
/// A transfer is one or more frames: a 12-byte header (`magic`, kind, a zero byte, the link's
/// session, payload length; big-endian) and the payload. The host opens a link with a fresh
/// random session, the gadget accepts it, and every later frame carries it: bytes still queued
/// from an earlier link (a cable pulled and plugged back, a site restarted) carry another
/// session and are dropped, never fed into the new link's TLS. A transfer that ends inside a
/// frame was cut short (cancelled mid-way): the link is broken, as a TCP reset would break it,
/// and the tunnel re-sends what it carried on its other links.
public enum USBLinkFrame {
    /// "WF".
    public static let magic: UInt16 = 0x5746
    public static let headerSize = 12
    /// The framing's version, sent in `open` and checked in `accept`.
    public static let version: UInt8 = 1
    /// Bounds for `maxTransfer`: room for a header and a byte, and at most 1 MiB.
    public static let transferSizes = (headerSize + 1)...(1 << 20)

    /// `asked`, clamped to `transferSizes` (both ends take it the same way).
    static func transferSize(_ asked: Int) -> Int {
        min(max(asked, transferSizes.lowerBound), transferSizes.upperBound)
    }

    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: UInt8
        init(_ rawValue: UInt8) { self.rawValue = rawValue }

        /// Host → gadget: a new link with this session (payload: the framing's version).
        public static let open = Kind(1)
        /// Gadget → host: the link is taken (payload: the framing's version).
        public static let accept = Kind(2)
        /// Either way: bytes of the link's stream.
        public static let data = Kind(3)
        /// Either way: the link ends.
        public static let close = Kind(4)
        /// Filler that keeps a transfer off a multiple of the packet size.
        public static let pad = Kind(5)

        static let known: Set<UInt8> = [1, 2, 3, 4, 5]

        public var description: String {
            switch rawValue {
            case 1: "open"
            case 2: "accept"
            case 3: "data"
            case 4: "close"
            case 5: "pad"
            default: "kind \(rawValue)"
            }
        }
    }

    /// What one transfer said.
    public enum Event: Hashable, Sendable {
        case open(session: UInt32)
        case accept(session: UInt32)
        case data(ByteBuffer)
        case close
    }
}
