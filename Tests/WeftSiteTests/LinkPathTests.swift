import Testing
import WeftSite
import WeftTransport
import WeftWire

@Suite("link paths and backoff", .timeLimit(.minutes(10)))
struct LinkPathTests {
    func endpoint(_ address: String, _ port: UInt16) -> SiteAnnouncement.Endpoint {
        SiteAnnouncement.Endpoint(linkType: .tls, address: address, port: port)
    }

    @Test("every endpoint from every local address of its family, linksPerPath times")
    func plan() {
        let endpoints = [endpoint("198.18.0.1", 4000), endpoint("2001:db8::1", 4000), endpoint("198.18.1.1", 4001)]
        let locals = [IPAddress("198.18.10.1")!, IPAddress("198.18.20.1")!, IPAddress("2001:db8::10")!]
        let paths = LinkPath.plan(endpoints: endpoints, localAddresses: locals, linksPerPath: 2)
        // 2 v4 endpoints × 2 v4 locals × 2 + 1 v6 endpoint × 1 v6 local × 2.
        #expect(paths.count == 10)
        #expect(paths.allSatisfy { $0.local!.family == IPAddress($0.remote.host)!.family })
        #expect(Set(paths).count == paths.count)
        #expect(LinkPath.plan(endpoints: endpoints, localAddresses: [], linksPerPath: 1).count == 3)
    }

    @Test("bad or duplicate endpoints are left out; IPv4-mapped ones are dialed as IPv4")
    func hostileEndpoints() {
        let paths = LinkPath.plan(
            endpoints: [
                endpoint("not-an-ip", 4000), endpoint("198.18.0.1", 0), endpoint("198.18.0.1", 4000),
                endpoint("::ffff:198.18.0.1", 4000),
            ],
            localAddresses: [], linksPerPath: 1)
        #expect(paths == [LinkPath(remote: HostPort(address: IPAddress("198.18.0.1")!, port: 4000))])
    }

    @Test("a member cannot make this site dial the metadata service, link-local, multicast or itself")
    func refusedEndpoints() {
        let policy = EndpointPolicy(ownListeners: [
            HostPort(address: IPAddress("127.0.0.1")!, port: 4000),
            HostPort(address: IPAddress("0.0.0.0")!, port: 4100),
        ])
        let refused: [(String, UInt16, EndpointPolicy.Refusal)] = [
            ("169.254.169.254", 80, .linkLocal), ("::ffff:169.254.169.254", 80, .linkLocal),
            ("fe80::1", 4000, .linkLocal), ("febf::1", 4000, .linkLocal), ("224.0.0.1", 4000, .multicast),
            ("239.255.255.250", 1900, .multicast), ("ff02::1", 4000, .multicast), ("255.255.255.255", 4000, .broadcast),
            ("240.0.0.1", 4000, .reserved), ("0.1.2.3", 4000, .thisNetwork), ("0.0.0.0", 4000, .unspecified),
            ("::", 4000, .unspecified), ("127.0.0.1", 4000, .ownListener), ("::ffff:127.0.0.1", 4000, .ownListener),
            ("127.0.0.1", 4100, .ownListener), ("::1", 4100, .ownListener), ("198.18.0.1", 0, .badPort),
            ("metadata.internal", 80, .notAnAddress),
        ]
        for (address, port, why) in refused {
            #expect(policy.refusal(address: address, port: Int(port)) == why, "\(address) port \(port)")
        }
        // Loopback (other ports), private ranges, the lab's range and public addresses stay allowed.
        for address in [
            "127.0.0.1", "127.0.0.2", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "198.18.0.1",
            "198.19.255.254", "fd00::1", "2001:db8::1", "100.64.0.1", "203.0.113.9",
        ] {
            #expect(policy.refusal(address: address, port: 4200) == nil, "\(address)")
        }
        let endpoints = [endpoint("198.18.0.1", 4000)] + refused.map { endpoint($0.0, $0.1) }
        let paths = LinkPath.plan(endpoints: endpoints, localAddresses: [], linksPerPath: 1, policy: policy)
        #expect(paths == [LinkPath(remote: HostPort(address: IPAddress("198.18.0.1")!, port: 4000))])
        // Only the first `maxEndpoints` endpoints are read at all.
        #expect(LinkPath.refused(endpoints: endpoints, policy: policy).count == LinkPath.maxEndpoints - 1)
    }

    @Test("Bluetooth endpoints: planned once each, only by a site with an adapter, never to its own")
    func bluetoothEndpoints() {
        let own = BluetoothAddress("00:AA:01:00:00:01")!
        let endpoints = [
            SiteAnnouncement.Endpoint(linkType: .bluetooth, address: "00:AA:02:00:00:02", port: 3),
            SiteAnnouncement.Endpoint(linkType: .bluetooth, address: own.description, port: 3),
            SiteAnnouncement.Endpoint(linkType: .bluetooth, address: "00:00:00:00:00:00", port: 3),
            SiteAnnouncement.Endpoint(linkType: .bluetooth, address: "00:AA:02:00:00:02", port: 31),
            SiteAnnouncement.Endpoint(linkType: .bluetooth, address: "hci0", port: 3),
            endpoint("198.18.0.1", 4000),
        ]
        let locals = [IPAddress("198.18.10.1")!]
        // Without an adapter of its own, the site skips Bluetooth endpoints, and says nothing.
        let without = LinkPath.plan(endpoints: endpoints, localAddresses: locals, linksPerPath: 2)
        #expect(without.allSatisfy { $0.remote.transport == .tls } && without.count == 2)
        #expect(LinkPath.refused(endpoints: endpoints, policy: EndpointPolicy()).isEmpty)
        // With one, a Bluetooth endpoint is one path (RFCOMM takes one connection per adapter
        // pair and channel), whatever linksPerPath and the local IP addresses say.
        let policy = EndpointPolicy(ownAdapters: [own])
        let with = LinkPath.plan(endpoints: endpoints, localAddresses: locals, linksPerPath: 2, policy: policy)
        #expect(
            with.filter { $0.remote.transport == .bluetooth } == [
                LinkPath(remote: LinkEndpoint(transport: .bluetooth, host: "00:AA:02:00:00:02", port: 3))
            ])
        #expect(with.count == 3)
        let refused = LinkPath.refused(endpoints: endpoints, policy: policy)
        #expect(refused.map(\.refusal) == [.ownListener, .malformed, .malformed, .malformed])
        #expect(refused[0].endpoint == "bluetooth 00:AA:01:00:00:01 channel 3")
    }

    @Test("USB gadgets: planned once each, only by a site with a USB host socket, never its own")
    func usbEndpoints() {
        let endpoints = [
            SiteAnnouncement.Endpoint(linkType: .usb, address: "weft-0011223344556677", port: 1),
            SiteAnnouncement.Endpoint(linkType: .usb, address: "weft-own", port: 1),
            SiteAnnouncement.Endpoint(linkType: .usb, address: "weft-0011223344556677", port: 2),
            SiteAnnouncement.Endpoint(linkType: .usb, address: "../../etc", port: 1),
            SiteAnnouncement.Endpoint(linkType: .usb, address: String(repeating: "a", count: 33), port: 1),
        ]
        #expect(LinkPath.plan(endpoints: endpoints, localAddresses: [], linksPerPath: 3).isEmpty)
        #expect(LinkPath.refused(endpoints: endpoints, policy: EndpointPolicy()).isEmpty)
        let policy = EndpointPolicy(dialsUSB: true, ownUSBSerial: "weft-own")
        let paths = LinkPath.plan(endpoints: endpoints, localAddresses: [], linksPerPath: 3, policy: policy)
        #expect(paths == [LinkPath(remote: LinkEndpoint(transport: .usb, host: "weft-0011223344556677", port: 1))])
        let refused = LinkPath.refused(endpoints: endpoints, policy: policy)
        #expect(refused.map(\.refusal) == [.ownListener, .malformed, .malformed, .malformed])
    }

    @Test("paths to one peer are capped, however many local addresses and links per path")
    func pathCap() {
        let endpoints = (0..<16).map { endpoint("198.18.0.\($0 + 1)", 4000) }
        let locals = (0..<8).map { IPAddress("198.18.10.\($0 + 1)")! }
        let paths = LinkPath.plan(endpoints: endpoints, localAddresses: locals, linksPerPath: 4)
        #expect(paths.count == LinkPath.maxPathsPerPeer)
        #expect(Set(paths).count == paths.count)
    }

    @Test("backoff doubles from 1 s to 30 s with jitter between half and all, and resets")
    func backoff() {
        var backoff = Backoff()
        for _ in 0..<10 { _ = backoff.next() }
        let expected: [Double] = [1, 2, 4, 8, 16, 30, 30, 30, 30, 30]
        var again = Backoff()
        for bound in expected {
            let delay = again.next()
            #expect(delay >= .seconds(bound / 2) && delay <= .seconds(bound), "\(delay) for \(bound)")
        }
        again.reset()
        #expect(again.next() <= .seconds(1))
        #expect(backoff.attempts == 10)
    }
}
