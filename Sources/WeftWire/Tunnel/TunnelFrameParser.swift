import NIOCore

/// Reads frames from a link's byte stream, however the bytes are split.
///
/// Feed it whatever arrived with `append`, then call `nextFrame` until it returns nil (a frame
/// is incomplete). A header announcing more than `limits.maxPayload`, an unknown type, or a
/// payload that does not parse exactly is an error: the link is broken and must be closed.
/// Stream data is returned as a slice of the input, not a copy.
public struct TunnelFrameParser: Sendable {
    public let limits: TunnelFrameLimits
    /// The input being parsed; frames inside it are handed out as slices of it.
    private var buffer = ByteBuffer()
    /// Input behind `buffer`, kept as it came: bytes are copied only for a frame that spans
    /// two inputs, and then only that frame's bytes.
    private var queued = CircularBuffer<ByteBuffer>()
    private var queuedBytes = 0
    /// Whether `buffer` is one this parser allocated to join a frame (so the rest of that frame
    /// is appended to it) rather than an input slice.
    private var ownsBuffer = false

    public init(limits: TunnelFrameLimits = .default) {
        self.limits = limits
    }

    /// Bytes held, waiting for the rest of a frame.
    public var bufferedBytes: Int { buffer.readableBytes + queuedBytes }

    /// Memory the held bytes keep alive, counting whole storages (a slice of a large read keeps
    /// all of it): what a peer that sends part of a frame costs.
    public var retainedCapacity: Int {
        queued.reduce(buffer.storageCapacity) { $0 + $1.storageCapacity }
    }

    public mutating func append(_ bytes: inout ByteBuffer) {
        defer { bytes.moveReaderIndex(to: bytes.writerIndex) }
        guard bytes.readableBytes > 0 else { return }
        if buffer.readableBytes == 0 && queued.isEmpty {
            buffer = bytes
            ownsBuffer = false
        } else {
            queued.append(bytes)
            queuedBytes += bytes.readableBytes
        }
    }

    /// Hands out what is buffered and not yet parsed (the bytes behind a handshake, which
    /// belong to the tunnel's own parser).
    public mutating func takeBuffered() -> ByteBuffer {
        var all = buffer
        while var next = queued.popFirst() { all.writeBuffer(&next) }
        buffer = ByteBuffer()
        ownsBuffer = false
        queuedBytes = 0
        return all
    }

    public mutating func append(_ bytes: ByteBuffer) {
        var copy = bytes
        append(&copy)
    }

    public mutating func nextFrame() throws(WireError) -> TunnelFrame? {
        while true {
            if let frame = try frameInBuffer() { return frame }
            guard !queued.isEmpty else { return nil }
            if buffer.readableBytes == 0 {
                buffer = queued.removeFirst()
                ownsBuffer = false
                queuedBytes -= buffer.readableBytes
                continue
            }
            // The next frame spans into the queued input: join exactly its bytes (or its
            // header first, when not even that is here).
            let needed =
                buffer.readableBytes < TunnelFrameSerializer.headerLength
                ? TunnelFrameSerializer.headerLength
                : TunnelFrameSerializer.headerLength
                    + Int(buffer.getInteger(at: buffer.readerIndex + 2, as: UInt32.self)!)
            // Joined in a buffer of our own, sized to what has arrived (not to what the header
            // announces: a peer that announces a large frame and sends little makes us hold only
            // what it sent); the rest of the frame is appended to it as it comes, so a frame in
            // many small reads is copied once.
            if !ownsBuffer {
                var joined = ByteBufferAllocator().buffer(capacity: min(needed, buffer.readableBytes + queuedBytes))
                joined.writeBuffer(&buffer)
                buffer = joined
                ownsBuffer = true
            }
            while buffer.readableBytes < needed, var next = queued.popFirst() {
                var part = next.readSlice(length: min(needed - buffer.readableBytes, next.readableBytes))!
                queuedBytes -= part.readableBytes
                buffer.writeBuffer(&part)
                if next.readableBytes > 0 { queued.prepend(next) }
            }
        }
    }

    /// The frame at the head of `buffer`, if all of it is there; throws on a bad header
    /// before waiting for a payload it would refuse anyway.
    private mutating func frameInBuffer() throws(WireError) -> TunnelFrame? {
        guard buffer.readableBytes >= TunnelFrameSerializer.headerLength,
            let rawType: UInt8 = buffer.getInteger(at: buffer.readerIndex),
            let flags: UInt8 = buffer.getInteger(at: buffer.readerIndex + 1),
            let length: UInt32 = buffer.getInteger(at: buffer.readerIndex + 2)
        else { return nil }
        guard let type = TunnelFrameType(rawValue: rawType) else {
            throw WireError(.invalidValue, field: "frame type")
        }
        guard Int(length) <= limits.maxPayload else { throw WireError(.limitExceeded, field: "frame length") }
        guard buffer.readableBytes >= TunnelFrameSerializer.headerLength + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: TunnelFrameSerializer.headerLength)
        var payload = buffer.readSlice(length: Int(length))!
        if buffer.readableBytes == 0 {
            buffer = ByteBuffer()
            ownsBuffer = false
        }
        let frame = try Self.parse(type, flags: flags, payload: &payload, limits: limits)
        guard payload.readableBytes == 0 else { throw WireError(.trailingBytes, field: "\(type) frame") }
        return frame
    }

    static func parse(_ type: TunnelFrameType, flags: UInt8, payload: inout ByteBuffer, limits: TunnelFrameLimits)
        throws(WireError) -> TunnelFrame
    {
        switch type {
        case .hello:
            guard try payload.readWireInteger(UInt32.self, field: "hello magic") == LinkHello.magic else {
                throw WireError(.invalidValue, field: "hello magic")
            }
            let minVersion = try payload.readWireInteger(UInt16.self, field: "hello min version")
            let maxVersion = try payload.readWireInteger(UInt16.self, field: "hello max version")
            let name = try payload.readPrefixedName(
                UInt8.self, limit: TunnelFrameLimits.siteName, field: "hello site")
            let incarnation = try payload.readWireInteger(UInt64.self, field: "hello incarnation")
            let tunnelID = try payload.readWireBytes(length: LinkHello.tunnelIDLength, field: "hello tunnel id")
            let linkID = try payload.readWireInteger(UInt32.self, field: "hello link id")
            let capabilities = try payload.readWireInteger(UInt32.self, field: "hello capabilities")
            guard minVersion <= maxVersion else { throw WireError(.invalidValue, field: "hello versions") }
            return .hello(
                LinkHello(
                    minVersion: minVersion,
                    maxVersion: maxVersion,
                    siteName: name,
                    incarnation: incarnation,
                    tunnelID: tunnelID,
                    linkID: linkID,
                    capabilities: capabilities
                )
            )
        case .welcome:
            let version = try payload.readWireInteger(UInt16.self, field: "welcome version")
            let name = try payload.readPrefixedName(
                UInt8.self, limit: TunnelFrameLimits.siteName, field: "welcome site")
            let incarnation = try payload.readWireInteger(UInt64.self, field: "welcome incarnation")
            let capabilities = try payload.readWireInteger(UInt32.self, field: "welcome capabilities")
            return .welcome(
                LinkWelcome(version: version, siteName: name, incarnation: incarnation, capabilities: capabilities))
        case .refuse:
            let code = try payload.readWireInteger(UInt16.self, field: "refuse reason")
            let message = try payload.readPrefixedString(
                UInt8.self, limit: TunnelFrameLimits.reason, field: "refuse message")
            return .refuse(LinkRefuse(reason: .init(code: code), message: message))
        case .streamOpen:
            let stream = try payload.readWireInteger(UInt32.self, field: "open stream")
            let app = try payload.readPrefixedName(UInt8.self, limit: TunnelFrameLimits.appName, field: "open app")
            let target = try payload.readPrefixedName(
                UInt16.self, limit: TunnelFrameLimits.target, field: "open target")
            let window = try payload.readWireInteger(UInt32.self, field: "open window")
            let origin = flags & 1 != 0 ? try StreamOrigin.read(from: &payload) : nil
            guard stream != 0 else { throw WireError(.invalidValue, field: "open stream") }
            return .streamOpen(
                StreamOpen(
                    streamID: stream, appName: app, target: target.isEmpty ? nil : target, initialWindow: window,
                    origin: origin, datagrams: flags & 2 != 0))
        case .streamData:
            let stream = try payload.readWireInteger(UInt32.self, field: "data stream")
            let offset = try payload.readWireInteger(UInt64.self, field: "data offset")
            guard stream != 0 else { throw WireError(.invalidValue, field: "data stream") }
            guard payload.readableBytes <= limits.maxDataChunk else {
                throw WireError(.limitExceeded, field: "data length")
            }
            guard offset <= WireProtocol.maxStreamOffset - UInt64(payload.readableBytes) else {
                throw WireError(.limitExceeded, field: "data offset")
            }
            let data = payload.readSlice(length: payload.readableBytes)!
            return .streamData(StreamData(streamID: stream, offset: offset, fin: flags & 1 != 0, data: data))
        case .streamReset:
            let stream = try payload.readWireInteger(UInt32.self, field: "reset stream")
            let code = try payload.readWireInteger(UInt16.self, field: "reset code")
            let finalSize = try payload.readWireInteger(UInt64.self, field: "reset final size")
            guard finalSize <= WireProtocol.maxStreamOffset else {
                throw WireError(.limitExceeded, field: "reset final size")
            }
            let message = try payload.readPrefixedString(
                UInt8.self, limit: TunnelFrameLimits.reason, field: "reset message")
            return .streamReset(
                StreamReset(streamID: stream, code: .init(rawValue: code), finalSize: finalSize, message: message))
        case .windowUpdate:
            let stream = try payload.readWireInteger(UInt32.self, field: "window stream")
            let limit = try payload.readWireInteger(UInt64.self, field: "window limit")
            guard limit <= WireProtocol.maxStreamOffset else { throw WireError(.limitExceeded, field: "window limit") }
            return .windowUpdate(WindowUpdate(streamID: stream, limit: limit))
        case .ack:
            return .ack(try payload.readWireInteger(UInt64.self, field: "ack"))
        case .ping:
            return .ping(try payload.readWireInteger(UInt64.self, field: "ping"))
        case .pong:
            return .pong(try payload.readWireInteger(UInt64.self, field: "pong"))
        case .linkPolicy:
            // Bit 0: blocked; other bits are for later and ignored.
            let bits = try payload.readWireInteger(UInt8.self, field: "link policy")
            return .linkPolicy(LinkPolicy(blocked: bits & 1 != 0))
        case .goodbye:
            let message = try payload.readPrefixedString(
                UInt8.self, limit: TunnelFrameLimits.reason, field: "goodbye message")
            return .goodbye(Goodbye(tunnel: flags & 1 != 0, message: message))
        }
    }
}
