import NIOCore

/// Reads what `DiscoveryMessageSerializer` writes, enforcing `DiscoveryMessage.Limits`.
///
/// Messages arrive whole (one MQTT payload each), so this parser takes a complete buffer and
/// refuses truncation and trailing bytes alike.
public struct DiscoveryMessageParser: Sendable {
    public init() {}

    public func parseSigned(_ bytes: [UInt8]) throws(WireError) -> SignedDiscoveryMessage {
        guard bytes.count <= DiscoveryMessage.Limits.plaintext else {
            throw WireError(.limitExceeded, field: "message")
        }
        var buffer = ByteBuffer(bytes: bytes)
        let start = buffer.readerIndex
        let message = try parseMessage(&buffer)
        let signedLength = buffer.readerIndex - start
        let signature = try buffer.readPrefixedBytes(
            UInt16.self,
            limit: DiscoveryMessage.Limits.signature,
            field: "signature"
        )
        guard buffer.readableBytes == 0 else { throw WireError(.trailingBytes, field: "message") }
        return SignedDiscoveryMessage(
            message: message,
            signedBytes: Array(bytes[0..<signedLength]),
            signature: signature
        )
    }

    func parseMessage(_ buffer: inout ByteBuffer) throws(WireError) -> DiscoveryMessage {
        let format = try buffer.readWireInteger(UInt8.self, field: "format")
        guard format == DiscoveryMessageSerializer.format else {
            throw WireError(.unsupportedVersion, field: "format")
        }
        let rawKind = try buffer.readWireInteger(UInt8.self, field: "kind")
        guard let kind = DiscoveryMessage.Kind(rawValue: rawKind) else {
            throw WireError(.invalidValue, field: "kind")
        }
        let timestamp = try buffer.readWireInteger(UInt64.self, field: "timestamp")
        let messageID = try buffer.readWireBytes(length: DiscoveryMessage.messageIDLength, field: "message id")
        let name = try buffer.readPrefixedName(
            UInt8.self, limit: DiscoveryMessage.Limits.siteName, field: "site name")
        guard !name.isEmpty else { throw WireError(.invalidValue, field: "site name") }
        let certificate = try buffer.readPrefixedBytes(
            UInt16.self,
            limit: DiscoveryMessage.Limits.certificate,
            field: "certificate"
        )
        let body = try buffer.readPrefixedBytes(UInt32.self, limit: DiscoveryMessage.Limits.body, field: "body")
        return DiscoveryMessage(
            kind: kind,
            timestampMillis: timestamp,
            messageID: messageID,
            senderName: name,
            senderCertificate: certificate,
            body: body
        )
    }
}
