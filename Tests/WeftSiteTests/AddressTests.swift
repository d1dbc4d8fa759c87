import Testing

@testable import WeftSite

@Suite("IP addresses, networks and app sockets", .timeLimit(.minutes(10)))
struct AddressTests {
    @Test("IPv4-mapped IPv6 normalises to IPv4")
    func mapped() {
        #expect(IPAddress("::ffff:10.0.0.1")!.normalized == IPAddress("10.0.0.1")!)
        #expect(IPAddress("::ffff:a00:1")!.normalized == IPAddress("10.0.0.1")!)
        #expect(IPAddress("::1")!.normalized == IPAddress("::1")!)
        #expect(IPAddress("10.0.0.1")!.description == "10.0.0.1")
        #expect(IPAddress("2001:DB8::1")!.description == "2001:db8::1")
    }

    @Test("host names and junk are not addresses")
    func notAddresses() {
        for text in ["localhost", "10.0.0", "10.0.0.256", "", "::g", "010.0.0.1x", "fe80::1%eth0", " 10.0.0.1"] {
            #expect(IPAddress(text) == nil, "\(text)")
        }
    }

    @Test("networks contain what they should, across families")
    func networks() {
        let v4 = IPNetwork("10.0.2.0/24")!
        #expect(v4.contains(IPAddress("10.0.2.255")!))
        #expect(v4.contains(IPAddress("::ffff:10.0.2.1")!))
        #expect(!v4.contains(IPAddress("10.0.3.0")!))
        let mapped = IPNetwork("::ffff:10.0.0.0/104")!
        #expect(mapped.contains(IPAddress("10.9.9.9")!))
        #expect(!mapped.contains(IPAddress("11.0.0.1")!))
        let single = IPNetwork("::1")!
        #expect(single.contains(IPAddress("::1")!))
        #expect(!single.contains(IPAddress("::2")!))
        #expect(IPNetwork("0.0.0.0/0")!.contains(IPAddress("8.8.8.8")!))
        #expect(!IPNetwork("0.0.0.0/0")!.contains(IPAddress("2001:db8::1")!))
        #expect(IPNetwork("10.0.0.1/24") == nil)
        #expect(IPNetwork("10.0.0.0/-1") == nil)
        #expect(IPNetwork("fd00::/129") == nil)
    }

    @Test("app sockets parse and print back")
    func appSockets() throws {
        for text in ["tcp:127.0.0.1:80", "tcp:[::1]:22", "unix:/run/app.sock", "tcp:[::ffff:10.0.0.1]:9"] {
            #expect(try AppSocket.parse(text).get().description == text)
        }
        #expect(try AppSocket.parse("TCP:10.0.0.1:80").get() == .tcp(IPAddress("10.0.0.1")!, port: 80))
        for text in [
            "tcp:127.0.0.1", "tcp:[::1]80", "tcp:1.2.3.4:-1", "unix:", "sctp:1.2.3.4:5", "tcp:[::1:5", "nothing",
        ] {
            #expect(throws: SocketParseError.self, "\(text)") { try AppSocket.parse(text).get() }
        }
    }
}
