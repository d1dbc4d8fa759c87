import NIOCore
import WeftWire

/// HAProxy's PROXY protocol header (version 1 text or version 2 binary), written to an exposed
/// app before a stream's first byte, so the app sees the real client behind weft's connection
/// (`localExposedApps[].proxyProtocol`).
///
/// The addresses are the stream's `StreamOrigin`: the client and the socket it connected to at
/// the site that opened the stream. A stream without one (a client on a Unix socket, or a peer
/// that does not send origins) gets the protocol's "unknown" form (v1 `UNKNOWN`; v2 `LOCAL`
/// with no address, which a receiver must accept), so the app uses the connection's own
/// addresses; the app never gets a stream without a header.
struct ProxyProtocolHeader {
    /// Version 2's fixed first 12 bytes.
    static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    let version: ExposedAppConfig.ProxyProtocol
    let origin: StreamOrigin?

    func write(into buffer: inout ByteBuffer) {
        switch version {
        case .v1: writeText(into: &buffer)
        case .v2: writeBinary(into: &buffer)
        }
    }

    var bytes: ByteBuffer {
        var buffer = ByteBuffer()
        write(into: &buffer)
        return buffer
    }

    /// `PROXY TCP4 192.0.2.1 198.51.100.7 51234 443\r\n`; at most 107 bytes.
    private func writeText(into buffer: inout ByteBuffer) {
        guard let origin else {
            buffer.writeString("PROXY UNKNOWN\r\n")
            return
        }
        let protocolName = origin.family == .ipv4 ? "TCP4" : "TCP6"
        let source = Self.text(origin.sourceAddress)
        let destination = Self.text(origin.destinationAddress)
        buffer.writeString(
            "PROXY \(protocolName) \(source) \(destination) \(origin.sourcePort) \(origin.destinationPort)\r\n")
    }

    /// Signature, version 2 with command PROXY, family and transport, length, addresses.
    private func writeBinary(into buffer: inout ByteBuffer) {
        buffer.writeBytes(Self.signature)
        guard let origin else {
            buffer.writeInteger(UInt8(0x20))  // version 2, LOCAL: use the connection's own addresses
            buffer.writeInteger(UInt8(0x00))  // AF_UNSPEC
            buffer.writeInteger(UInt16(0))
            return
        }
        buffer.writeInteger(UInt8(0x21))  // version 2, PROXY
        buffer.writeInteger(UInt8(origin.family == .ipv4 ? 0x11 : 0x21))  // TCP over IPv4 / IPv6
        buffer.writeInteger(UInt16(2 * origin.family.addressLength + 4))
        buffer.writeBytes(origin.sourceAddress)
        buffer.writeBytes(origin.destinationAddress)
        buffer.writeInteger(origin.sourcePort)
        buffer.writeInteger(origin.destinationPort)
    }

    private static func text(_ bytes: [UInt8]) -> String {
        IPAddress(bytes: bytes)?.description ?? "?"
    }
}

extension StreamOrigin {
    /// The origin of a client's TCP connection: its remote and local addresses. Nil for a Unix
    /// socket. IPv4 clients of a dual-stack socket (`::ffff:a.b.c.d`) are given as IPv4.
    init?(client remote: SocketAddress?, local: SocketAddress?) {
        guard let remote, let local, let remotePort = remote.port, let localPort = local.port,
            let remoteText = remote.ipAddress, let localText = local.ipAddress,
            var source = IPAddress(remoteText)?.normalized, var destination = IPAddress(localText)?.normalized
        else { return nil }
        if source.family != destination.family {
            source = source.mappedToIPv6
            destination = destination.mappedToIPv6
        }
        guard let port = UInt16(exactly: remotePort), let ownPort = UInt16(exactly: localPort) else { return nil }
        self.init(
            family: source.family == .v4 ? .ipv4 : .ipv6, sourceAddress: source.bytes, sourcePort: port,
            destinationAddress: destination.bytes, destinationPort: ownPort)
    }

    /// `192.0.2.1:51234` or `[2001:db8::1]:51234`: the client, for logs.
    var clientDescription: String {
        let address = IPAddress(bytes: sourceAddress)?.description ?? "?"
        return family == .ipv4 ? "\(address):\(sourcePort)" : "[\(address)]:\(sourcePort)"
    }
}

extension IPAddress {
    /// The IPv6 form of an IPv4 address (`::ffff:a.b.c.d`); an IPv6 address as it is.
    var mappedToIPv6: IPAddress {
        guard family == .v4 else { return self }
        return IPAddress(bytes: [UInt8](repeating: 0, count: 10) + [0xff, 0xff] + bytes)!
    }
}
