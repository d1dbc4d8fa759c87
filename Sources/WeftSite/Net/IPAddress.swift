#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An IPv4 or IPv6 address parsed from a literal; never from a host name.
///
/// Access checks compare `normalized` forms, so `::ffff:10.0.0.1` and `10.0.0.1` are the same
/// address and one cannot be used to slip past a rule written for the other.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    public enum Family: Hashable, Sendable {
        case v4
        case v6
    }

    public let family: Family
    /// 4 bytes for IPv4, 16 for IPv6, network order.
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        switch bytes.count {
        case 4: family = .v4
        case 16: family = .v6
        default: return nil
        }
        self.bytes = bytes
    }

    /// Parses a dotted-quad IPv4 or an RFC 4291 IPv6 literal (no brackets, no zone).
    public init?(_ text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            family = .v4
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            family = .v6
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
            return
        }
        return nil
    }

    /// The IPv4 address inside an IPv4-mapped IPv6 address, or the address itself.
    public var normalized: IPAddress {
        guard family == .v6, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff
        else { return self }
        return IPAddress(bytes: Array(bytes[12..<16]))!
    }

    /// `0.0.0.0` or `::`.
    public var isUnspecified: Bool { bytes.allSatisfy { $0 == 0 } }

    /// 127.0.0.0/8 or `::1` (IPv4-mapped forms included).
    public var isLoopback: Bool {
        let address = normalized
        return address.family == .v4 ? address.bytes[0] == 127 : address.bytes == [UInt8](repeating: 0, count: 15) + [1]
    }

    public var description: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let ok = bytes.withUnsafeBytes { raw in
            inet_ntop(family == .v4 ? AF_INET : AF_INET6, raw.baseAddress, &buffer, socklen_t(buffer.count))
        }
        guard ok != nil else { return "?" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
