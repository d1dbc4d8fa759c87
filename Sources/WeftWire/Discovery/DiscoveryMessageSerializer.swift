import NIOCore

/// Writes discovery messages. Layout (all integers big-endian):
///
/// ```
/// u8 format (1) | u8 kind | u64 timestamp ms | 16 message id
/// u8 len + site name | u16 len + certificate DER | u32 len + body
/// ```
/// A signed message is that, then `u16 len + signature`.
public struct DiscoveryMessageSerializer: Sendable {
    public static let format: UInt8 = 1

    public init() {}

    /// The bytes a sender signs.
    public func serialize(_ message: DiscoveryMessage) -> [UInt8] {
        precondition(message.messageID.count == DiscoveryMessage.messageIDLength)
        var buffer = ByteBuffer()
        buffer.writeInteger(Self.format)
        buffer.writeInteger(message.kind.rawValue)
        buffer.writeInteger(message.timestampMillis)
        buffer.writeBytes(message.messageID)
        buffer.writePrefixedString(UInt8.self, message.senderName)
        buffer.writePrefixedBytes(UInt16.self, message.senderCertificate)
        buffer.writePrefixedBytes(UInt32.self, message.body)
        return Array(buffer.readableBytesView)
    }

    /// Signed bytes followed by the signature.
    public func serialize(signedBytes: [UInt8], signature: [UInt8]) -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeBytes(signedBytes)
        buffer.writePrefixedBytes(UInt16.self, signature)
        return Array(buffer.readableBytesView)
    }
}
