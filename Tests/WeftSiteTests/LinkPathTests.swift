import Testing
import WeftSite
import WeftWire

@Suite("link paths and backoff")
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
        #expect(paths.allSatisfy { $0.local!.family == $0.remote.address.family })
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
