import Foundation
import Testing
import WeftTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A config for a real site process on `broker`.
func meshSiteConfig(
    _ name: String,
    directory: String,
    broker: MosquittoBroker,
    key: String = "process-test-mesh-key",
    topic: String = ""
) -> String {
    """
    siteName: \(name)
    crypto:
      key: "\(key)"
    logger:
      level: debug
      file: \(directory)/\(name).log
    messageChannel:
      mqtt:
        brokerServer: \(broker.url)
        keepAlive: 5
        topic: "\(topic)"
    tunnel:
      localSockets:
      - mode: dedicated-address
        listenAddress: 127.0.0.1
        listenPort: \((try? FreePort.find()) ?? 0)
    localExposedApps:
    - appName: web-of-\(name)
      appSocket: tcp:127.0.0.1:8080
    stateDir: \(directory)/\(name)

    """
}

@Suite(
    "sites as processes on a real broker",
    .serialized,
    .enabled(if: MosquittoBroker.isAvailable, "mosquitto is not installed (apt-get install mosquitto)"),
    .timeLimit(.minutes(10))
)
struct SiteDiscoveryProcessTests {
    func peerLines(_ log: String, _ event: String, _ peer: String) -> Int {
        log.split(separator: "\n").filter { $0.contains(event) && $0.contains("peer=\(peer)") }.count
    }

    @Test(
        "a site killed with SIGKILL is down at the others once its keep-alive runs out; one stopped with SIGTERM at once"
    )
    func killAndStop() async throws {
        let broker = try MosquittoBroker()
        let scratch = Scratch()
        var processes: [String: ChildProcess] = [:]
        for name in ["observer", "victim", "quitter"] {
            let config = try scratch.write(
                "\(name).yaml", meshSiteConfig(name, directory: scratch.path, broker: broker))
            processes[name] = try WeftProcess.start(["run", "--config", config])
        }
        defer { for process in processes.values where process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let met = await WeftProcess.waitFor(.seconds(60)) {
            let log = scratch.read("observer.log")
            return peerLines(log, "peer up", "victim") == 1 && peerLines(log, "peer up", "quitter") == 1
        }
        #expect(met, "\(scratch.read("observer.log"))")
        #expect(scratch.read("observer.log").contains("apps=web-of-victim"))

        let clock = ContinuousClock()
        var start = clock.now
        kill(processes["victim"]!.processIdentifier, SIGKILL)
        let vanished = await WeftProcess.waitFor(.seconds(60)) {
            scratch.read("observer.log").split(separator: "\n").contains {
                $0.contains("peer down") && $0.contains("peer=victim") && $0.contains("reason=vanished")
            }
        }
        #expect(vanished, "\(scratch.read("observer.log"))")
        // keepAlive 5 s: the broker gives up after 1.5 × 5 s and publishes the will.
        print("discovery: a killed site seen vanished after \(clock.now - start)")

        start = clock.now
        kill(processes["quitter"]!.processIdentifier, SIGTERM)
        let stopped = await WeftProcess.waitFor(.seconds(60)) {
            scratch.read("observer.log").split(separator: "\n").contains {
                $0.contains("peer down") && $0.contains("peer=quitter") && $0.contains("reason=stopped")
            }
        }
        #expect(stopped, "\(scratch.read("observer.log"))")
        print("discovery: a stopped site seen down after \(clock.now - start)")
        #expect(await processes["quitter"]!.exited(within: .seconds(60)))
        #expect(processes["quitter"]!.exitCode == 0)
        kill(processes["observer"]!.processIdentifier, SIGTERM)
        #expect(await processes["observer"]!.exited(within: .seconds(60)))
        #expect(processes["observer"]!.exitCode == 0)
    }

    @Test("crypto.trust: pinned: a stranger is refused until `weft trust pin` and SIGHUP; forget drops it again")
    func pinnedTrust() async throws {
        let broker = try MosquittoBroker()
        let scratch = Scratch()
        let strict = try scratch.write(
            "strict.yaml",
            meshSiteConfig("strict", directory: scratch.path, broker: broker)
                .replacingOccurrences(of: "crypto:\n", with: "crypto:\n  trust: pinned\n"))
        let other = try scratch.write("other.yaml", meshSiteConfig("other", directory: scratch.path, broker: broker))
        let strictProcess = try WeftProcess.start(["run", "--config", strict])
        let otherProcess = try WeftProcess.start(["run", "--config", other])
        defer {
            for process in [strictProcess, otherProcess] where process.isRunning {
                kill(process.processIdentifier, SIGKILL)
            }
        }
        // The other site trusts strict on first use; strict refuses it.
        let refused = await WeftProcess.waitFor(.seconds(60)) {
            scratch.read("strict.log").contains("reason=\"not pinned\"")
                && peerLines(scratch.read("other.log"), "peer up", "strict") == 1
        }
        #expect(refused, "\(scratch.read("strict.log"))")
        #expect(peerLines(scratch.read("strict.log"), "peer up", "other") == 0)

        let identity = try await WeftProcess.run(["identity", "--config", other])
        let fingerprint = try #require(
            identity.output.split(whereSeparator: \.isWhitespace).first { $0.hasPrefix("sha256:") }, "\(identity)")
        let pin = try await WeftProcess.run(["trust", "pin", "--config", strict, "other", String(fingerprint)])
        #expect(pin.status == 0 && pin.output.contains("SIGHUP"), "\(pin)")
        kill(strictProcess.processIdentifier, SIGHUP)
        // Up from its retained announcement, sent again on the reload (not 30 s later at its refresh).
        // The reload's summary is logged after the peer comes up: both are waited for.
        let up = await WeftProcess.waitFor(.seconds(60)) {
            peerLines(scratch.read("strict.log"), "peer up", "other") == 1
                && scratch.read("strict.log").contains("trust: pinned, 1 pinned")
        }
        #expect(up, "\(scratch.read("strict.log"))")

        let forget = try await WeftProcess.run(["trust", "forget", "--config", strict, "other"])
        #expect(forget.status == 0, "\(forget)")
        kill(strictProcess.processIdentifier, SIGHUP)
        let dropped = await WeftProcess.waitFor(.seconds(60)) {
            scratch.read("strict.log").split(separator: "\n").contains {
                $0.contains("peer down") && $0.contains("peer=other") && $0.contains("reason=untrusted")
            }
        }
        #expect(dropped, "\(scratch.read("strict.log"))")
        for process in [strictProcess, otherProcess] {
            kill(process.processIdentifier, SIGTERM)
            #expect(await process.exited(within: .seconds(60)))
        }
    }

    @Test("a site with the wrong key never sees the mesh, and the mesh never sees it")
    func wrongKey() async throws {
        let broker = try MosquittoBroker()
        let scratch = Scratch()
        // Both on one topic, so the outsider's messages do reach the mesh.
        let good = try scratch.write(
            "good.yaml",
            meshSiteConfig("good", directory: scratch.path, broker: broker, topic: "shared/topic")
        )
        let bad = try scratch.write(
            "bad.yaml",
            meshSiteConfig(
                "bad", directory: scratch.path, broker: broker, key: "not-the-mesh-key", topic: "shared/topic")
        )
        let goodProcess = try WeftProcess.start(["run", "--config", good])
        let badProcess = try WeftProcess.start(["run", "--config", bad])
        defer {
            for process in [goodProcess, badProcess] where process.isRunning {
                kill(process.processIdentifier, SIGKILL)
            }
        }
        let refused = await WeftProcess.waitFor(.seconds(60)) {
            scratch.read("good.log").contains("reason=undecryptable")
                && scratch.read("bad.log").contains("reason=undecryptable")
        }
        #expect(refused, "\(scratch.read("good.log"))")
        #expect(!scratch.read("good.log").contains("peer up"))
        #expect(!scratch.read("bad.log").contains("peer up"))
        for process in [goodProcess, badProcess] {
            kill(process.processIdentifier, SIGTERM)
            #expect(await process.exited(within: .seconds(60)))
        }
    }
}
