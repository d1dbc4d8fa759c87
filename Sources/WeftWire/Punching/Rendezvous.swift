import NIOCore

/// A hole-punching rendezvous: one site asks another (or answers it) to probe each other's
/// candidate addresses now. It travels as a `DiscoveryMessage` of kind `rendezvous`, sealed and
/// signed like an announcement, so only a member can send one and nobody can replay it; it
/// names its addressee, and every other site ignores it.
public struct Rendezvous: Hashable, Sendable {
    public struct Candidate: Hashable, Sendable {
        /// 4 or 16 bytes.
        public var address: [UInt8]
        public var port: UInt16

        public init(address: [UInt8], port: UInt16) {
            precondition(address.count == 4 || address.count == 16, "an IP address is 4 or 16 bytes")
            self.address = address
            self.port = port
        }
    }

    public enum Limits {
        public static let candidates = 8
        public static let siteName = DiscoveryMessage.Limits.siteName
    }

    /// The site this message is for.
    public var to: String
    /// The round's token (`PunchProbe.token`).
    public var token: [UInt8]
    /// Whether this answers the addressee's request (else it asks).
    public var answer: Bool
    public var candidates: [Candidate]

    public init(to: String, token: [UInt8], answer: Bool, candidates: [Candidate]) {
        self.to = to
        self.token = token
        self.answer = answer
        self.candidates = candidates
    }

    /// `u8+to | 16 token | u8 answer | u8 count, (u8 family 4/6 | 4/16 address | u16 port)*`.
    public func serialized() -> [UInt8] {
        precondition(token.count == PunchProbe.tokenLength && candidates.count <= Limits.candidates)
        var buffer = ByteBuffer()
        buffer.writePrefixedString(UInt8.self, to)
        buffer.writeBytes(token)
        buffer.writeInteger(UInt8(answer ? 1 : 0))
        buffer.writeInteger(UInt8(candidates.count))
        for candidate in candidates {
            buffer.writeInteger(UInt8(candidate.address.count == 4 ? 4 : 6))
            buffer.writeBytes(candidate.address)
            buffer.writeInteger(candidate.port)
        }
        return Array(buffer.readableBytesView)
    }

    public init(parsing bytes: [UInt8]) throws(WireError) {
        var buffer = ByteBuffer(bytes: bytes)
        to = try buffer.readPrefixedName(UInt8.self, limit: Limits.siteName, field: "rendezvous addressee")
        token = try buffer.readWireBytes(length: PunchProbe.tokenLength, field: "rendezvous token")
        switch try buffer.readWireInteger(UInt8.self, field: "rendezvous answer") {
        case 0: answer = false
        case 1: answer = true
        default: throw WireError(.invalidValue, field: "rendezvous answer")
        }
        let count = Int(try buffer.readWireInteger(UInt8.self, field: "candidate count"))
        guard count <= Limits.candidates else { throw WireError(.limitExceeded, field: "candidate count") }
        candidates = []
        for _ in 0..<count {
            let length: Int
            switch try buffer.readWireInteger(UInt8.self, field: "candidate family") {
            case 4: length = 4
            case 6: length = 16
            default: throw WireError(.invalidValue, field: "candidate family")
            }
            let address = try buffer.readWireBytes(length: length, field: "candidate address")
            let port = try buffer.readWireInteger(UInt16.self, field: "candidate port")
            guard port != 0 else { throw WireError(.invalidValue, field: "candidate port") }
            candidates.append(Candidate(address: address, port: port))
        }
        guard buffer.readableBytes == 0 else { throw WireError(.trailingBytes, field: "rendezvous") }
    }
}
