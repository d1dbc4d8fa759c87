import NIOCore

/// A site leaving the mesh: sent on a clean stop, and left with the broker as the last will.
public struct SiteGoodbye: Hashable, Sendable {
    public enum Reason: UInt8, Sendable {
        /// The site stopped cleanly.
        case stopped = 1
        /// The broker published the site's last will: the site vanished.
        case lastWill = 2
    }

    /// The broker connection this goodbye belongs to (`SiteAnnouncement.session`).
    public var session: [UInt8]
    public var reason: Reason

    public init(session: [UInt8], reason: Reason) {
        self.session = session
        self.reason = reason
    }

    /// `16 session | u8 reason`.
    public func serialized() -> [UInt8] {
        precondition(session.count == SiteAnnouncement.sessionLength)
        return session + [reason.rawValue]
    }

    public init(parsing bytes: [UInt8]) throws(WireError) {
        var buffer = ByteBuffer(bytes: bytes)
        session = try buffer.readWireBytes(length: SiteAnnouncement.sessionLength, field: "session")
        guard let reason = Reason(rawValue: try buffer.readWireInteger(UInt8.self, field: "reason")) else {
            throw WireError(.invalidValue, field: "reason")
        }
        self.reason = reason
        guard buffer.readableBytes == 0 else { throw WireError(.trailingBytes, field: "goodbye") }
    }
}
