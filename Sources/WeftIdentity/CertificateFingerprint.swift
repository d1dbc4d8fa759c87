import Crypto

/// The SHA-256 digest of a certificate's DER encoding: how sites pin each other.
public struct CertificateFingerprint: Hashable, Sendable, CustomStringConvertible {
    /// The 32 digest bytes.
    public let bytes: [UInt8]

    /// Hashes a DER-encoded certificate.
    public init<Bytes: Sequence>(derCertificate: Bytes) where Bytes.Element == UInt8 {
        self.bytes = Array(SHA256.hash(data: Array(derCertificate)))
    }

    /// Takes 32 digest bytes as they came (from the wire); nil for any other length.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        self.bytes = bytes
    }

    /// Parses the textual form, 64 hex digits, with or without `sha256:` and colons.
    public init?(_ text: String) {
        var hex = Substring(text.lowercased())
        if hex.hasPrefix("sha256:") { hex = hex.dropFirst(7) }
        let digits = hex.filter { $0 != ":" }
        guard digits.count == 64 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(32)
        var index = digits.startIndex
        while index < digits.endIndex {
            let next = digits.index(index, offsetBy: 2)
            guard let byte = UInt8(digits[index..<next], radix: 16) else { return nil }
            out.append(byte)
            index = next
        }
        self.bytes = out
    }

    /// `sha256:` followed by 64 lower-case hex digits.
    public var description: String {
        "sha256:" + bytes.hexEncoded
    }
}

extension Sequence<UInt8> {
    /// Lower-case hex, two digits a byte.
    public var hexEncoded: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in self {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
