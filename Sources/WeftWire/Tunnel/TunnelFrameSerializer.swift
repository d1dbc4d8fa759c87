import NIOCore

/// Writes frames: `u8 type | u8 flags | u32 payload length | payload`, integers big-endian.
///
/// | type | payload |
/// |---|---|
/// | hello | `u32 magic, u16 min, u16 max, u8+name, u64 incarnation, 16 tunnel id, u32 link id, u32 caps` |
/// | welcome | `u16 version, u8+name, u64 incarnation, u32 caps` |
/// | refuse | `u16 reason, u8+message` |
/// | streamOpen | flags bit 0 = origin, bit 1 = datagrams; `u32 stream, u8+app, u16+target (empty: none), u32 initial window[, origin]` |
/// | streamData | flags bit 0 = fin; `u32 stream, u64 offset, data…` |
/// | streamReset | `u32 stream, u16 code, u64 final size, u8+message` |
/// | windowUpdate | `u32 stream, u64 limit` |
/// | ack, ping, pong | `u64` |
/// | goodbye | flags bit 0 = whole tunnel; `u8+message` |
/// | linkPolicy | `u8` bits: 0 = blocked |
public struct TunnelFrameSerializer: Sendable {
    public static let headerLength = 6

    /// The payload's length, or a little more, for most frames (a longer hello or goodbye just
    /// grows the buffer once more).
    static func payloadEstimate(_ frame: TunnelFrame) -> Int {
        switch frame {
        case .streamData(let data): 12 + data.data.readableBytes
        case .streamOpen(let open):
            12 + open.appName.utf8.count + (open.target?.utf8.count ?? 0) + (open.origin?.encodedLength ?? 0)
        case .streamReset(let reset): 15 + min(reset.message.utf8.count, 255)
        case .ack, .ping, .pong: 8
        case .windowUpdate: 12
        default: 64
        }
    }

    public init() {}

    public func serialize(_ frame: TunnelFrame, into buffer: inout ByteBuffer) {
        // Room for the whole frame first: growing an empty buffer field by field reallocated
        // and copied it several times per frame.
        buffer.reserveCapacity(minimumWritableBytes: Self.headerLength + Self.payloadEstimate(frame))
        let start = buffer.writerIndex
        buffer.writeInteger(Self.type(of: frame).rawValue)
        buffer.writeInteger(Self.flags(of: frame))
        buffer.writeInteger(UInt32(0))  // length, patched below
        let payloadStart = buffer.writerIndex
        switch frame {
        case .hello(let hello):
            precondition(hello.tunnelID.count == LinkHello.tunnelIDLength)
            buffer.writeInteger(LinkHello.magic)
            buffer.writeInteger(hello.minVersion)
            buffer.writeInteger(hello.maxVersion)
            buffer.writePrefixedString(UInt8.self, hello.siteName)
            buffer.writeInteger(hello.incarnation)
            buffer.writeBytes(hello.tunnelID)
            buffer.writeInteger(hello.linkID)
            buffer.writeInteger(hello.capabilities)
        case .welcome(let welcome):
            buffer.writeInteger(welcome.version)
            buffer.writePrefixedString(UInt8.self, welcome.siteName)
            buffer.writeInteger(welcome.incarnation)
            buffer.writeInteger(welcome.capabilities)
        case .refuse(let refuse):
            buffer.writeInteger(refuse.reason.code)
            buffer.writePrefixedString(UInt8.self, refuse.message.truncatedUTF8(TunnelFrameLimits.reason))
        case .streamOpen(let open):
            buffer.writeInteger(open.streamID)
            buffer.writePrefixedString(UInt8.self, open.appName)
            buffer.writePrefixedString(UInt16.self, open.target ?? "")
            buffer.writeInteger(open.initialWindow)
            open.origin?.write(to: &buffer)
        case .streamData(var data):
            buffer.writeInteger(data.streamID)
            buffer.writeInteger(data.offset)
            buffer.writeBuffer(&data.data)
        case .streamReset(let reset):
            buffer.writeInteger(reset.streamID)
            buffer.writeInteger(reset.code.rawValue)
            buffer.writeInteger(reset.finalSize)
            buffer.writePrefixedString(UInt8.self, reset.message.truncatedUTF8(TunnelFrameLimits.reason))
        case .windowUpdate(let update):
            buffer.writeInteger(update.streamID)
            buffer.writeInteger(update.limit)
        case .ack(let value), .ping(let value), .pong(let value):
            buffer.writeInteger(value)
        case .goodbye(let goodbye):
            buffer.writePrefixedString(UInt8.self, goodbye.message.truncatedUTF8(TunnelFrameLimits.reason))
        case .linkPolicy(let policy):
            buffer.writeInteger(UInt8(policy.blocked ? 1 : 0))
        }
        buffer.setInteger(UInt32(buffer.writerIndex - payloadStart), at: start + 2)
    }

    static func type(of frame: TunnelFrame) -> TunnelFrameType {
        switch frame {
        case .hello: .hello
        case .welcome: .welcome
        case .refuse: .refuse
        case .streamOpen: .streamOpen
        case .streamData: .streamData
        case .streamReset: .streamReset
        case .windowUpdate: .windowUpdate
        case .ack: .ack
        case .ping: .ping
        case .pong: .pong
        case .goodbye: .goodbye
        case .linkPolicy: .linkPolicy
        }
    }

    static func flags(of frame: TunnelFrame) -> UInt8 {
        switch frame {
        case .streamData(let data): data.fin ? 1 : 0
        case .goodbye(let goodbye): goodbye.tunnel ? 1 : 0
        case .streamOpen(let open): (open.origin == nil ? 0 : 1) | (open.datagrams ? 2 : 0)
        default: 0
        }
    }
}

extension String {
    /// At most `limit` bytes of UTF-8, cut on a character boundary: reasons are for people to read.
    func truncatedUTF8(_ limit: Int) -> String {
        guard utf8.count > limit else { return self }
        var result = ""
        for character in self {
            guard result.utf8.count + character.utf8.count <= limit else { break }
            result.append(character)
        }
        return result
    }
}
