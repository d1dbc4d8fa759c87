import ArgumentParser
import Foundation
import Logging
import Synchronization
import WeftDiscovery
import WeftIdentity
import WeftTestSupport
import WeftWire

/// N simulated sites against one local mosquitto: time until every directory is complete,
/// against a baseline of N plain MQTT clients exchanging unsealed retained messages.
struct DiscoveryBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "discovery",
        abstract: "Start N sites against one local broker; print time to full directories, CPU and memory."
    )

    @Option(help: "How many sites.")
    var sites = 200

    @Option(help: "Give up after this many seconds.")
    var timeout = 120

    func run() async throws {
        guard MosquittoBroker.isAvailable else {
            throw ValidationError("mosquitto is not installed (apt-get install mosquitto)")
        }
        print("discovery benchmark: \(sites) sites, one local mosquitto, one process")
        let baseline = try await runBaseline()
        let weft = try await runWeft()
        print("")
        print(row("case", "complete", "CPU to then", "node CPU", "node peak RSS", "broker CPU"))
        for (name, result) in [("plain MQTT, unsealed (baseline)", baseline), ("weft discovery", weft)] {
            print(
                row(
                    name,
                    String(format: "%.2f s", result.seconds),
                    String(format: "%.2f s", result.completeCPU),
                    String(format: "%.2f s", result.nodeCPU),
                    megabytes(result.nodeRSS),
                    String(format: "%.2f s", result.brokerCPU)
                )
            )
        }
        print(
            String(
                format: "ratio weft / baseline: time %.2f×, node CPU %.2f×", weft.seconds / baseline.seconds,
                weft.nodeCPU / max(baseline.nodeCPU, 0.001)))
        // Until complete: what converging costs. In all: stopping too (each site's goodbye is
        // checked by every site still running).
        print(
            String(
                format: "per site: %.1f ms CPU until complete, %.1f ms in all, %@ RSS",
                weft.completeCPU * 1000 / Double(sites), weft.nodeCPU * 1000 / Double(sites),
                megabytes(weft.nodeRSS / sites) as NSString))
    }

    func row(_ name: String, _ columns: String...) -> String {
        name.padding(toLength: 34, withPad: " ", startingAt: 0)
            + columns.map { String(repeating: " ", count: max(0, 15 - $0.count)) + $0 }.joined()
    }

    struct Result {
        var seconds: Double
        /// The node's CPU from the start until every directory was complete.
        var completeCPU: Double
        var nodeCPU: Double
        var nodeRSS: Int
        var brokerCPU: Double
    }

    /// N raw clients: each publishes one retained message and subscribes to all of them.
    func runBaseline() async throws -> Result {
        let broker = try MosquittoBroker()
        let brokerPID = try brokerProcessID(broker)
        let before = ProcessStats.read()
        let brokerBefore = ProcessStats.read(pid: brokerPID)
        let clock = ContinuousClock()
        let start = clock.now
        var clients: [MQTTClient] = []
        let sites = self.sites
        let counts = Counts(sites)
        var atComplete = before
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<sites {
                let client = try MQTTClient(
                    configuration: .init(host: "127.0.0.1", port: broker.port, clientID: "baseline-\(index)")
                )
                clients.append(client)
                group.addTask {
                    try client.start()
                    for await event in client.connectionEvents where event == .connected {
                        try client.subscribe("bench/p/+")
                        try client.publish(
                            topic: "bench/p/\(index)", payload: Array("site \(index) here".utf8), retain: true)
                        break
                    }
                    var seen = Set<String>()
                    for await message in client.messages {
                        seen.insert(message.topic)
                        let count = seen.count
                        counts.values.withLock { $0[index] = count }
                        if count == sites { return }
                    }
                }
            }
            let deadline = clock.now + .seconds(timeout)
            while counts.values.withLock({ $0.contains { $0 < sites } }) && clock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            atComplete = ProcessStats.read()
            group.cancelAll()
            for client in clients { client.stop() }
        }
        let elapsed = clock.now - start
        let after = ProcessStats.read()
        let brokerAfter = ProcessStats.read(pid: brokerPID)
        let complete = counts.values.withLock { $0.filter { $0 == sites }.count }
        if complete < sites { print("baseline: only \(complete) of \(sites) clients complete before the timeout") }
        return Result(
            seconds: elapsed.inSeconds,
            completeCPU: atComplete.cpuSeconds - before.cpuSeconds,
            nodeCPU: after.cpuSeconds - before.cpuSeconds,
            nodeRSS: after.peakResidentBytes,
            brokerCPU: brokerAfter.cpuSeconds - brokerBefore.cpuSeconds
        )
    }

    func runWeft() async throws -> Result {
        let broker = try MosquittoBroker()
        let brokerPID = try brokerProcessID(broker)
        let directory = NSTemporaryDirectory() + "weft-bench-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let identities = try (0..<sites).map { _ in try SiteIdentity.generate() }
        let before = ProcessStats.read()
        let brokerBefore = ProcessStats.read(pid: brokerPID)
        let clock = ContinuousClock()
        let start = clock.now
        let agents = try (0..<sites).map { index in
            try DiscoveryAgent(
                configuration: .init(
                    siteName: "bench-site-\(index)",
                    mesh: MeshKeys(key: "benchmark-mesh-key", topic: "bench/mesh"),
                    mqtt: .init(host: "127.0.0.1", port: broker.port, clientID: "bench-\(index)"),
                    stateDirectory: directory + "/\(index)",
                    softwareVersion: "bench",
                    endpoints: [.init(linkType: .tls, address: "198.18.0.\(index % 250 + 1)", port: 47000)],
                    apps: ["app-\(index)"]
                ),
                identity: identities[index],
                logger: logger
            )
        }
        var completeAfter = Duration.zero
        var atComplete = before
        try await withThrowingTaskGroup(of: Void.self) { group in
            for agent in agents {
                group.addTask {
                    await agent.run()
                }
                group.addTask {
                    for await _ in agent.events {}
                }
            }
            let deadline = clock.now + .seconds(timeout)
            while agents.contains(where: { $0.peerCount < sites - 1 }) && clock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            completeAfter = clock.now - start
            atComplete = ProcessStats.read()
            let complete = agents.filter { $0.peerCount == sites - 1 }.count
            if complete < sites { print("weft: only \(complete) of \(sites) directories complete before the timeout") }
            var drops: [String: Int] = [:]
            for agent in agents {
                for (reason, count) in agent.dropCounts { drops[reason.description, default: 0] += count }
            }
            if !drops.isEmpty {
                print(
                    "messages dropped until complete: "
                        + drops.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            }
            for agent in agents { agent.leave() }
            group.cancelAll()
        }
        let after = ProcessStats.read()
        let brokerAfter = ProcessStats.read(pid: brokerPID)
        return Result(
            seconds: completeAfter.inSeconds,
            completeCPU: atComplete.cpuSeconds - before.cpuSeconds,
            nodeCPU: after.cpuSeconds - before.cpuSeconds,
            nodeRSS: after.peakResidentBytes,
            brokerCPU: brokerAfter.cpuSeconds - brokerBefore.cpuSeconds
        )
    }

    func brokerProcessID(_ broker: MosquittoBroker) throws -> Int32 {
        guard let pid = broker.processIdentifier else { throw ValidationError("broker not running") }
        return pid
    }
}

/// How many presence messages each baseline client has seen.
final class Counts: Sendable {
    let values: Mutex<[Int]>
    init(_ count: Int) { values = Mutex([Int](repeating: 0, count: count)) }
}
