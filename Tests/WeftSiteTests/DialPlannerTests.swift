import NIOPosix
import Testing
import WeftDiscovery
import WeftIdentity
import WeftTransport
import WeftWire

@testable import WeftSite

@Suite("dial planner", .timeLimit(.minutes(10)))
struct DialPlannerTests {
    func peer(_ name: String, endpoints: [(String, UInt16)], fingerprint byte: UInt8 = 1) -> PeerInfo {
        PeerInfo(
            siteName: name,
            fingerprint: CertificateFingerprint(derCertificate: [byte, UInt8(name.utf8.count)]),
            announcement: SiteAnnouncement(
                protocolVersion: 1, capabilities: 0, instance: 1, session: Array(repeating: 0, count: 16),
                siteID: "id-\(name)", softwareVersion: "test", refreshSeconds: 30,
                endpoints: endpoints.map { .init(linkType: .tls, address: $0.0, port: $0.1) }, apps: []))
    }

    /// A relay: it announces that it relays, and an endpoint to dial.
    func relay(_ name: String, _ address: String) -> PeerInfo {
        var info = peer(name, endpoints: [(address, 4000)], fingerprint: 9)
        info.announcement.capabilities = SiteAnnouncement.relaysLinks
        return info
    }

    func path(_ address: String, _ port: Int) -> LinkPath {
        LinkPath(remote: HostPort(address: IPAddress(address)!, port: port))
    }

    func started(_ actions: [DialPlanner.Action]) -> [LinkPath] {
        actions.compactMap { if case .startDialing(_, let path, _) = $0 { path } else { nil } }
    }

    @Test("a used peer that comes up gets one run per path; one it does not use gets none")
    func usedPeersAreDialed() {
        var planner = DialPlanner(usedSites: ["b"], exposesApps: false, announcesEndpoints: true)
        let actions = planner.directory(.up(peer("b", endpoints: [("198.18.0.2", 4000), ("198.18.0.3", 4000)])))
        #expect(
            actions == [
                .startDialing(peer: "b", path: path("198.18.0.2", 4000), run: 1),
                .startDialing(peer: "b", path: path("198.18.0.3", 4000), run: 2),
            ])
        #expect(planner.directory(.up(peer("c", endpoints: [("198.18.0.4", 4000)]))) == [])
        #expect(planner.runCount == 2)
    }

    @Test("relays: every site keeps a tunnel to them; a used peer is also dialed through each but itself")
    func relays() {
        var planner = DialPlanner(usedSites: ["b"], exposesApps: false, announcesEndpoints: false)
        // b announces nothing to dial: no relay yet, nothing to do.
        #expect(planner.directory(.up(peer("b", endpoints: []))) == [.nothingToDial(peer: "b", used: true)])
        // A relay comes up: this site dials it, and dials b through it.
        let actions = planner.directory(.up(relay("r", "198.18.0.9")))
        let relayed = LinkPath(remote: .relay(via: "r", to: "b"))
        #expect(Set(started(actions)) == [path("198.18.0.9", 4000), relayed])
        let relayedRun =
            actions.compactMap { action -> UInt64? in
                if case .startDialing(_, relayed, let run) = action { run } else { nil }
            }.first ?? 0
        #expect(planner.relays == ["r"])
        // A site that does not relay, or relays with nothing to dial, is no relay.
        var mute = peer("m", endpoints: [])
        mute.announcement.capabilities = SiteAnnouncement.relaysLinks
        #expect(planner.directory(.up(mute)) == [])
        #expect(planner.directory(.up(peer("c", endpoints: [("198.18.0.4", 4000)]))) == [])
        #expect(planner.relays == ["r"])
        // The relay going away stops the relayed run to b (and its own, at their next step).
        let down = planner.directory(.down(siteName: "r", reason: .stopped))
        #expect(down.contains(.stopDialing(run: relayedRun)), "\(down)")
        #expect(planner.relays.isEmpty)
        #expect(!planner.isCurrent(peer: "b", path: relayed, run: relayedRun))
    }

    @Test("a site that exposes apps and announces no endpoint dials every peer, until it announces one")
    func unreachableExposerDialsAll() {
        var planner = DialPlanner(usedSites: [], exposesApps: true, announcesEndpoints: false)
        #expect(started(planner.directory(.up(peer("c", endpoints: [("198.18.0.4", 4000)])))).count == 1)
        // Once it announces an endpoint, runs to peers it does not use end at their next step.
        #expect(planner.ownEndpoints(announced: true) == [])
        #expect(planner.dialTarget(peer: "c", path: path("198.18.0.4", 4000), run: 1) == nil)
        #expect(planner.runCount == 0)
    }

    @Test("a changed announcement kicks kept runs, starts new paths and stops gone ones")
    func changedAnnouncement() {
        var planner = DialPlanner(usedSites: ["b"], exposesApps: false, announcesEndpoints: true)
        _ = planner.directory(.up(peer("b", endpoints: [("198.18.0.2", 4000), ("198.18.0.3", 4000)])))
        let actions = planner.directory(.changed(peer("b", endpoints: [("198.18.0.3", 4000), ("198.18.0.5", 4000)])))
        #expect(
            actions == [
                .stopDialing(run: 1), .kick(run: 2),
                .startDialing(peer: "b", path: path("198.18.0.5", 4000), run: 3),
            ])
        #expect(!planner.isCurrent(peer: "b", path: path("198.18.0.2", 4000), run: 1))
        #expect(planner.isCurrent(peer: "b", path: path("198.18.0.3", 4000), run: 2))
    }

    @Test("a peer that stops or is no longer trusted loses its tunnel; one that vanished keeps it")
    func downReasons() {
        var planner = DialPlanner(usedSites: ["b"], exposesApps: false, announcesEndpoints: true)
        let info = peer("b", endpoints: [("198.18.0.2", 4000)])
        _ = planner.directory(.up(info))
        #expect(planner.directory(.down(siteName: "b", reason: .vanished)) == [])
        #expect(!planner.isUp("b"))
        // Its links are still accepted (the certificate is still known)...
        #expect(planner.knows(info.fingerprint))
        // ...but its run ends at its next step.
        #expect(planner.dialTarget(peer: "b", path: path("198.18.0.2", 4000), run: 1) == nil)
        _ = planner.directory(.up(info))
        #expect(
            planner.directory(.down(siteName: "b", reason: .stopped)) == [.closeTunnel(peer: "b", reason: "b stopped")])
        #expect(
            planner.directory(.down(siteName: "b", reason: .untrusted)) == [
                .closeTunnel(peer: "b", reason: "b is no longer trusted")
            ])
        #expect(!planner.knows(info.fingerprint))
        #expect(planner.info(of: "b") == nil)
    }

    @Test("refused endpoints are reported once per change; a peer with nothing to dial is reported")
    func refusedEndpoints() {
        var planner = DialPlanner(usedSites: ["b"], exposesApps: false, announcesEndpoints: true)
        let hostile = peer("b", endpoints: [("169.254.169.254", 80), ("198.18.0.2", 4000)])
        let first = planner.directory(.up(hostile))
        #expect(first.contains { if case .endpointsRefused("b", let lines) = $0 { lines.count == 1 } else { false } })
        let again = planner.directory(.changed(hostile))
        #expect(!again.contains { if case .endpointsRefused = $0 { true } else { false } })
        let nothing = planner.directory(.changed(peer("b", endpoints: [("224.0.0.1", 4000)])))
        #expect(nothing.contains(.nothingToDial(peer: "b", used: true)))
        #expect(nothing.contains(.stopDialing(run: 1)))
    }

    @Test("paths of all peers together stop at the cap")
    func totalCap() {
        var planner = DialPlanner(usedSites: [], exposesApps: true, announcesEndpoints: false)
        var starts = 0
        var limited = 0
        for index in 0..<(DialPlanner.maxPathsTotal / LinkPath.maxEndpoints + 2) {
            let endpoints = (0..<LinkPath.maxEndpoints).map { ("198.18.\(index).\($0 + 1)", UInt16(4000)) }
            let actions = planner.directory(.up(peer("p\(index)", endpoints: endpoints)))
            starts += started(actions).count
            limited += actions.filter { $0 == .pathLimitReached(peer: "p\(index)") }.count
        }
        #expect(starts == DialPlanner.maxPathsTotal)
        #expect(planner.runCount == DialPlanner.maxPathsTotal)
        #expect(limited == 2)
    }

    @Test("apps that change start and end runs; stop ends every run and ignores later events")
    func appsAndStop() {
        var planner = DialPlanner(usedSites: [], exposesApps: false, announcesEndpoints: true)
        #expect(planner.directory(.up(peer("b", endpoints: [("198.18.0.2", 4000)]))) == [])
        #expect(started(planner.apps(usedSites: ["b"], exposesApps: false)) == [path("198.18.0.2", 4000)])
        #expect(planner.kickAll("b") == [.kick(run: 1)])
        #expect(planner.stop() == [.stopDialing(run: 1)])
        #expect(planner.directory(.up(peer("c", endpoints: [("198.18.0.3", 4000)]))) == [])
        #expect(planner.dialTarget(peer: "b", path: path("198.18.0.2", 4000), run: 1) == nil)
        #expect(planner.stop() == [])
    }

    @Test("an adapter up after start: the peer's Bluetooth endpoint is dialed from then on, never this site's own")
    func adapterComesUp() throws {
        var planner = DialPlanner(usedSites: ["b"], exposesApps: false, announcesEndpoints: true)
        var info = peer("b", endpoints: [("198.18.0.2", 4000)])
        let own = try #require(BluetoothAddress("00:AA:01:00:00:01"))
        info.announcement.endpoints += [
            .init(linkType: .bluetooth, address: "00:AA:01:01:00:02", port: 3),
            .init(linkType: .bluetooth, address: own.description, port: 3),
        ]
        // No adapter yet: only the TCP endpoint is planned.
        #expect(started(planner.directory(.up(info))) == [path("198.18.0.2", 4000)])
        let actions = planner.ownAdapters([own])
        let bluetooth = LinkPath(remote: try #require(LinkEndpoint(announced: info.announcement.endpoints[1])))
        #expect(started(actions) == [bluetooth])
        let refused = "bluetooth 00:AA:01:00:00:01 channel 3: this site's own link listener"
        #expect(actions.contains(.endpointsRefused(peer: "b", lines: [refused])), "\(actions)")
        #expect(planner.policy.ownAdapters == [own])
        // The same adapters again change nothing.
        #expect(planner.ownAdapters([own]) == [])
    }
}

@Suite("wake-up of a dial run: a kick or a stop ends its backoff at once", .timeLimit(.minutes(10)))
struct WakeupTests {
    @Test("a signal given before the wait ends it at once; reset forgets it; the time ends it too")
    func signals() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let wakeup = Wakeup()
        wakeup.signal()
        let clock = ContinuousClock()
        var started = clock.now
        await wakeup.wait(upTo: .seconds(120), on: loop)
        // Under the suite's time limit: a wait that was not ended by the signal would run 120 s.
        print("wakeup: a kept signal ended the wait after \(clock.now - started)")
        wakeup.signal()
        wakeup.reset()
        started = clock.now
        await wakeup.wait(upTo: .milliseconds(20), on: loop)
        #expect(clock.now - started >= .milliseconds(20), "a reset signal still ended the wait")
    }

    @Test("a signal during the wait ends it")
    func signalDuring() async throws {
        let wakeup = Wakeup()
        async let waited: Void = wakeup.wait(upTo: .seconds(120), on: MultiThreadedEventLoopGroup.singleton.next())
        try await Task.sleep(for: .milliseconds(10))
        wakeup.signal()
        await waited
    }

    @Test("a run that cannot dial leaves the plan")
    func drop() {
        var planner = DialPlanner(usedSites: ["b"], exposesApps: false, announcesEndpoints: true)
        _ = planner.directory(
            .up(DialPlannerTests().peer("b", endpoints: [("198.18.0.2", 4000)])))
        let path = DialPlannerTests().path("198.18.0.2", 4000)
        #expect(planner.runCount == 1)
        planner.drop(peer: "b", path: path, run: 1)
        #expect(planner.runCount == 0 && !planner.isCurrent(peer: "b", path: path, run: 1))
        // The next change of the peer plans the path again, as a new run.
        #expect(
            planner.directory(.changed(DialPlannerTests().peer("b", endpoints: [("198.18.0.2", 4000)])))
                == [.startDialing(peer: "b", path: path, run: 2)])
    }
}
