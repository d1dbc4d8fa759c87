import Testing
import WeftTransport
import WeftWire

@Suite("link endpoints and proxy URLs: what parses and what is refused")
struct LinkEndpointTests {
    @Test(
        "WebSocket URLs that parse",
        arguments: [
            ("ws://198.18.0.1:8080/weft", "198.18.0.1", 8080, "/weft", false),
            ("wss://Example.COM/weft", "example.com", 443, "/weft", true),
            ("ws://example.com", "example.com", 80, "/", false),
            ("wss://[2001:db8::1]:8443/a/b", "2001:db8::1", 8443, "/a/b", true),
        ])
    func parses(_ url: String, _ host: String, _ port: Int, _ path: String, _ secure: Bool) throws {
        let endpoint = try #require(LinkEndpoint.webSocket(url: url))
        #expect(endpoint.transport == .websocket)
        #expect(endpoint.host == host && endpoint.port == port && endpoint.path == path && endpoint.secure == secure)
        // The URL it announces parses back to the same endpoint.
        #expect(LinkEndpoint.webSocket(url: endpoint.url) == endpoint)
        #expect(LinkEndpoint(announced: endpoint.announced) == endpoint)
    }

    @Test(
        "WebSocket URLs that are refused",
        arguments: [
            "http://example.com/weft", "ws://", "ws://:80/", "ws://host:0/", "ws://host:65536/", "ws://host:x/",
            "ws://user@host/", "ws://host/a?b", "ws://host/a#b", "ws://ho st/", "ws://host/\u{1b}[2J",
            "ws://[::1/", "ws://[::1]x/", "ws://a:b:c/", "ws://ex_ample.com/",
            "ws://" + String(repeating: "a", count: 60) + "/",
        ])
    func refused(_ url: String) {
        #expect(LinkEndpoint.webSocket(url: url) == nil)
    }

    @Test("an announced TLS endpoint with port 0 is malformed")
    func tlsPortZero() {
        #expect(LinkEndpoint(announced: .init(linkType: .tls, address: "198.18.0.1", port: 0)) == nil)
        #expect(LinkEndpoint(announced: .init(linkType: .websocket, address: "not a url", port: 80)) == nil)
    }

    @Test("announced Bluetooth endpoints: an adapter's address and an RFCOMM channel 1–30, or malformed")
    func bluetooth() throws {
        let endpoint = try #require(
            LinkEndpoint(announced: .init(linkType: .bluetooth, address: "00:aa:01:00:00:00", port: 11)))
        #expect(endpoint.transport == .bluetooth && endpoint.host == "00:AA:01:00:00:00" && endpoint.port == 11)
        #expect(endpoint.announced == .init(linkType: .bluetooth, address: "00:AA:01:00:00:00", port: 11))
        #expect(endpoint.description == "bluetooth 00:AA:01:00:00:00 channel 11")
        for (address, port) in [
            ("00:AA:01:00:00:00", 0), ("00:AA:01:00:00:00", 31), ("00:00:00:00:00:00", 1), ("198.18.0.1", 1),
            ("hci0", 1), ("00:AA:01:00:00", 1),
        ] {
            #expect(
                LinkEndpoint(announced: .init(linkType: .bluetooth, address: address, port: UInt16(port))) == nil,
                "\(address) \(port)")
        }
    }

    @Test("proxy URLs: http with credentials (percent-decoded), socks5 without; the password is never printed")
    func proxies() throws {
        let http = try LinkProxy.parse("http://us%40er:p%3Ass@proxy.example:3128").get()
        #expect(http.kind == .http && http.host == "proxy.example" && http.port == 3128)
        #expect(http.username == "us@er" && http.password == "p:ss")
        #expect(!http.description.contains("p:ss") && http.description.contains("***"))
        let socks = try LinkProxy.parse("socks5://[::1]:1080/").get()
        #expect(socks.kind == .socks5 && socks.host == "::1" && socks.port == 1080 && socks.username == nil)
        for bad in [
            "ftp://host:1", "http://host", "http://host:0", "http://host:99999", "http://host:1/path",
            "socks5://u:p@host:1080", "http://:p@host:1", "http://ho st:1", "http://u:%zz@host:1",
        ] {
            #expect(throws: LinkProxy.ParseError.self, "\(bad)") { try LinkProxy.parse(bad).get() }
        }
    }
}
