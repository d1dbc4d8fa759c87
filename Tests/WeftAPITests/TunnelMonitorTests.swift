import Testing

@testable import WeftAPI

/// `weft top`'s view as a value: rates from two samples, the peer and sort keys, and a screen
/// that fits the terminal and escapes what peers name.
@Suite("weft top: the tunnel monitor", .timeLimit(.minutes(10)))
struct TunnelMonitorTests {
    static func link(_ id: UInt32, sent: UInt64, received: UInt64, rtt: Double? = 1) -> APIModels.Link {
        APIModels.Link(
            id: id, localAddress: "127.0.0.1:1", remoteAddress: "127.0.0.1:2", transport: "tls", path: "direct",
            role: "primary", blocked: false, blockedByPeer: false, dialed: true, state: "up", rttMs: rtt,
            rateBitsPerSecond: 1e6, inFlightBytes: 4096, bytesSent: sent, bytesReceived: received)
    }

    static func tunnel(
        _ peer: String, incarnation: String = "1", links: [APIModels.Link], resent: Int = 0
    ) -> APIModels.Tunnel {
        APIModels.Tunnel(
            peer: peer, incarnation: incarnation, peerIncarnation: "2", openStreams: 3, resentBytes: resent,
            bytesSent: links.reduce(0) { $0 + $1.bytesSent }, bytesReceived: links.reduce(0) { $0 + $1.bytesReceived },
            links: links)
    }

    @Test("rates are the counters' growth over the interval; none before a second sample or across a new tunnel")
    func rates() throws {
        var monitor = TunnelMonitor()
        monitor.update([Self.tunnel("alpha", links: [Self.link(1, sent: 1000, received: 0)])], at: .seconds(10))
        #expect(monitor.peers.first?.sentPerSecond == nil)
        monitor.update(
            [Self.tunnel("alpha", links: [Self.link(1, sent: 3000, received: 500)], resent: 100)], at: .seconds(12))
        let peer = try #require(monitor.peers.first)
        #expect(peer.sentPerSecond == 1000 && peer.receivedPerSecond == 250 && peer.resentPerSecond == 50)
        #expect(monitor.links.first?.sentPerSecond == 1000 && monitor.links.first?.receivedPerSecond == 250)
        // The peer restarted: a new tunnel's counters start over, so no rate from the old ones.
        monitor.update(
            [Self.tunnel("alpha", incarnation: "9", links: [Self.link(1, sent: 10, received: 10)])], at: .seconds(13))
        #expect(monitor.peers.first?.sentPerSecond == nil && monitor.links.first?.sentPerSecond == nil)
    }

    @Test("keys: q, Ctrl-C and Ctrl-D quit; n, p, Tab and the arrows switch peer; s cycles the sort")
    func keys() {
        #expect(TunnelMonitor.keys(in: Array("q".utf8)) == [.quit])
        #expect(TunnelMonitor.keys(in: [3]) == [.quit] && TunnelMonitor.keys(in: [4]) == [.quit])
        #expect(TunnelMonitor.keys(in: [0x1B, 0x5B, 0x43, 0x1B, 0x5B, 0x44]) == [.nextPeer, .previousPeer])
        #expect(TunnelMonitor.keys(in: Array("nps\t".utf8)) == [.nextPeer, .previousPeer, .nextSort, .nextPeer])
        #expect(TunnelMonitor.keys(in: Array("xyz".utf8)).isEmpty)
        // A lone escape (or a cut sequence) is not a key and does not trap.
        #expect(TunnelMonitor.keys(in: [0x1B]).isEmpty && TunnelMonitor.keys(in: [0x1B, 0x5B]).isEmpty)
    }

    @Test("peers switch in name order and wrap; links sort by id, rates and RTT")
    func selectionAndSort() {
        var monitor = TunnelMonitor()
        let links = [
            Self.link(1, sent: 0, received: 0, rtt: 9), Self.link(2, sent: 0, received: 0, rtt: 2),
            Self.link(3, sent: 0, received: 0, rtt: nil),
        ]
        monitor.update([Self.tunnel("gamma", links: links), Self.tunnel("beta", links: [])], at: .seconds(1))
        #expect(monitor.selectedPeer == "beta")
        #expect(monitor.handle(.nextPeer) == .redraw && monitor.selectedPeer == "gamma")
        _ = monitor.handle(.nextPeer)
        #expect(monitor.selectedPeer == "beta")
        _ = monitor.handle(.previousPeer)
        #expect(monitor.selectedPeer == "gamma")
        #expect(monitor.links.map(\.link.id) == [1, 2, 3] && monitor.sort == .link)
        monitor.update(
            [
                Self.tunnel(
                    "gamma",
                    links: [
                        Self.link(1, sent: 100, received: 0, rtt: 9), Self.link(2, sent: 900, received: 5, rtt: 2),
                        Self.link(3, sent: 500, received: 50, rtt: nil),
                    ]),
                Self.tunnel("beta", links: []),
            ], at: .seconds(2))
        _ = monitor.handle(.nextSort)
        #expect(monitor.sort == .sent && monitor.links.map(\.link.id) == [2, 3, 1])
        _ = monitor.handle(.nextSort)
        #expect(monitor.sort == .received && monitor.links.map(\.link.id) == [3, 2, 1])
        _ = monitor.handle(.nextSort)
        #expect(monitor.sort == .rtt && monitor.links.map(\.link.id) == [2, 1, 3])
        #expect(monitor.handle(.quit) == .quit)
    }

    @Test("a peer named on the command line stays selected while its tunnel is away")
    func pinnedPeer() {
        var monitor = TunnelMonitor(peer: "delta")
        monitor.update([Self.tunnel("alpha", links: [])], at: .seconds(1))
        #expect(monitor.selectedPeer == "delta" && monitor.links.isEmpty)
        #expect(monitor.lines(site: "here", width: 120, height: 30).contains("LINKS TO delta"))
    }

    @Test("the screen fits the terminal, keeps the keys line last, and escapes what peers name")
    func screen() {
        var monitor = TunnelMonitor()
        let hostile = "evil\u{1B}[2J\u{07}"
        monitor.update(
            [Self.tunnel(hostile, links: (1...40).map { Self.link($0, sent: 0, received: 0) })], at: .seconds(1))
        let lines = monitor.lines(site: "here", width: 50, height: 20)
        #expect(lines.count == 20 && lines.allSatisfy { $0.count <= 50 })
        #expect(lines.last?.hasPrefix("q quit") == true)
        #expect(!lines.joined().unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 })
        monitor.problem = "cannot read the API: refused"
        #expect(monitor.lines(site: "here", width: 80, height: 10).contains("! cannot read the API: refused"))
    }
}
