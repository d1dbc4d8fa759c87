import Testing
import WeftTunnel
import WeftWire

@Suite("where an accepted link goes: join, replace, create or refuse", .timeLimit(.minutes(10)))
struct LinkPlacementTests {
    /// A hello from dialer "a" (half `dialer`) to acceptor "b", naming b's half `requested`.
    func hello(dialer: UInt64, requested: UInt64) -> LinkHello {
        LinkHello(
            minVersion: 1, maxVersion: 1, siteName: "a", incarnation: dialer,
            tunnelID: TunnelID(localSite: "a", localIncarnation: dialer, peerSite: "b", peerIncarnation: requested)
                .bytes,
            linkID: 1, capabilities: 0)
    }

    func place(dialer: UInt64, requested: UInt64, current: (UInt64, UInt64)?) -> LinkPlacement {
        LinkPlacement.place(
            hello(dialer: dialer, requested: requested), acceptor: "b",
            current: current.map { .init(localIncarnation: $0.0, peerIncarnation: $0.1) })
    }

    @Test("no tunnel: a new one is made for a fresh dialer; a named tunnel is gone")
    func noTunnel() {
        #expect(place(dialer: 5, requested: 0, current: nil) == .create)
        #expect(place(dialer: 5, requested: 9, current: nil) == .refuse("tunnel 9 is gone here"))
    }

    @Test("the current tunnel is joined when the hello names it or meets it fresh")
    func join() {
        // A further link of the same tunnel.
        #expect(place(dialer: 5, requested: 7, current: (7, 5)) == .join(localIncarnation: 7))
        // The dialer's first links, still naming the acceptor's half as unknown.
        #expect(place(dialer: 5, requested: 0, current: (7, 5)) == .join(localIncarnation: 7))
        // Both sides created a tunnel at once: the acceptor's has not met a dialer half yet.
        #expect(place(dialer: 5, requested: 0, current: (7, 0)) == .join(localIncarnation: 7))
        #expect(place(dialer: 5, requested: 7, current: (7, 0)) == .join(localIncarnation: 7))
    }

    @Test("a dialer that lost its half replaces the tunnel; a stale name is refused")
    func replaceOrRefuse() {
        // The dialer restarted or ended its tunnel: it asks for a new one.
        #expect(place(dialer: 6, requested: 0, current: (7, 5)) == .replace)
        // The dialer names a half this side no longer has (this side restarted or ended it).
        #expect(place(dialer: 5, requested: 8, current: (7, 5)) == .refuse("tunnel 8 is gone here"))
        // Right half, wrong dialer half: another life of the dialer that knew this tunnel.
        #expect(place(dialer: 6, requested: 7, current: (7, 5)) == .refuse("tunnel 7 is gone here"))
    }

    @Test("a tunnel id that does not hold the hello's own incarnation is refused")
    func inconsistent() {
        var forged = hello(dialer: 5, requested: 0)
        forged.incarnation = 6
        #expect(
            LinkPlacement.place(forged, acceptor: "b", current: nil)
                == .refuse("the tunnel id does not hold the hello's incarnation"))
    }
}
