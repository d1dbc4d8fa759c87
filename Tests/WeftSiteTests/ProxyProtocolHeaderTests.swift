import NIOCore
import Testing
import WeftWire

@testable import WeftSite

/// The PROXY header an exposed app gets, byte for byte as HAProxy's proxy-protocol.txt
/// describes it, and the origin taken from a client's socket addresses.
@Suite("PROXY protocol: the header an app gets, and the origin it is made from", .timeLimit(.minutes(10)))
struct ProxyProtocolHeaderTests {
    static let v4 = StreamOrigin(
        family: .ipv4, sourceAddress: [198, 18, 0, 7], sourcePort: 51234, destinationAddress: [127, 0, 0, 1],
        destinationPort: 8080)!
    static let v6 = StreamOrigin(
        family: .ipv6, sourceAddress: [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1],
        sourcePort: 443, destinationAddress: Array(repeating: 0, count: 15) + [1], destinationPort: 8443)!

    func text(_ version: ExposedAppConfig.ProxyProtocol, _ origin: StreamOrigin?) -> String {
        String(buffer: ProxyProtocolHeader(version: version, origin: origin).bytes)
    }

    func bytes(_ version: ExposedAppConfig.ProxyProtocol, _ origin: StreamOrigin?) -> [UInt8] {
        Array(ProxyProtocolHeader(version: version, origin: origin).bytes.readableBytesView)
    }

    @Test("v1: TCP4, TCP6 and UNKNOWN lines, CRLF-terminated, within the 107-byte limit")
    func version1() {
        #expect(text(.v1, Self.v4) == "PROXY TCP4 198.18.0.7 127.0.0.1 51234 8080\r\n")
        #expect(text(.v1, Self.v6) == "PROXY TCP6 2001:db8::1 ::1 443 8443\r\n")
        #expect(text(.v1, nil) == "PROXY UNKNOWN\r\n")
        let longest = StreamOrigin(
            family: .ipv6, sourceAddress: Array(repeating: 0xff, count: 16), sourcePort: 65535,
            destinationAddress: Array(repeating: 0xfe, count: 16), destinationPort: 65535)!
        #expect(text(.v1, longest).utf8.count <= 107)
    }

    @Test("v2: signature, PROXY command, TCP over IPv4 or IPv6, lengths 12 and 36; LOCAL, UNSPEC without an origin")
    func version2() {
        let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
        #expect(
            bytes(.v2, Self.v4)
                == signature + [0x21, 0x11, 0, 12, 198, 18, 0, 7, 127, 0, 0, 1, 0xc8, 0x22, 0x1f, 0x90])
        let six = bytes(.v2, Self.v6)
        #expect(six.count == 16 + 36 && Array(six[12..<16]) == [0x21, 0x21, 0, 36])
        #expect(Array(six[16..<32]) == Self.v6.sourceAddress && Array(six[48..<52]) == [0x01, 0xbb, 0x20, 0xfb])
        #expect(bytes(.v2, nil) == signature + [0x20, 0x00, 0, 0])
    }

    @Test("an origin from socket addresses: IPv4, IPv6, IPv4 on a dual-stack socket as IPv4, none for Unix")
    func fromSockets() throws {
        let plain = StreamOrigin(
            client: try SocketAddress(ipAddress: "198.18.0.7", port: 51234),
            local: try SocketAddress(ipAddress: "127.0.0.1", port: 8080))
        #expect(plain == Self.v4)
        let mapped = StreamOrigin(
            client: try SocketAddress(ipAddress: "::ffff:198.18.0.7", port: 51234),
            local: try SocketAddress(ipAddress: "::ffff:127.0.0.1", port: 8080))
        #expect(mapped == Self.v4)
        let six = StreamOrigin(
            client: try SocketAddress(ipAddress: "2001:db8::1", port: 443),
            local: try SocketAddress(ipAddress: "::1", port: 8443))
        #expect(six == Self.v6)
        // Mixed families (an IPv4 client seen on an IPv6 local address): both as IPv6.
        let mixed = try #require(
            StreamOrigin(
                client: try SocketAddress(ipAddress: "198.18.0.7", port: 1),
                local: try SocketAddress(ipAddress: "::1", port: 2)))
        #expect(
            mixed.family == .ipv6 && mixed.sourceAddress == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 7])
        #expect(StreamOrigin(client: try SocketAddress(unixDomainSocketPath: "/tmp/x"), local: nil) == nil)
        #expect(Self.v4.clientDescription == "198.18.0.7:51234" && Self.v6.clientDescription == "[2001:db8::1]:443")
    }

    @Test("config: proxyProtocol v1 or v2 (any case) on single and range apps; it reaches the API document")
    func config() throws {
        let loaded = try loadConfig(
            minimalConfig + """
                localExposedApps:
                - appName: web
                  appSocket: tcp:127.0.0.1:80
                  proxyProtocol: V2
                - appName: lan
                  mode: range
                  portRange: [22]
                  addressRange: [10.0.0.0/8]
                  proxyProtocol: v1
                - appName: plain
                  appSocket: tcp:127.0.0.1:81

                """)
        let apps = loaded.configuration.localExposedApps
        #expect(apps.map(\.proxyProtocol) == [.v2, .v1, nil])
        #expect(ExposedAppDocument(apps[0]).proxyProtocol == "v2" && ExposedAppDocument(apps[2]).proxyProtocol == nil)
        #expect(ExposedAppRegistry(apps).proxyProtocol(of: "lan") == .v1)
    }
}
