import ArgumentParser
import Foundation
import WeftAPI
import WeftSite
import WeftWire

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the running site: peers, tunnels and their links, exposed and remote apps.",
        discussion: """
            Reads the site's REST API (restfulApi in the config, or --api). With --watch it prints \
            the status again every --interval seconds, a time line between, until stopped or \
            --count times (for a live view on a terminal, see weft top).
            """
    )

    @OptionGroup var options: APIOptions

    @Flag(help: "Print the status again every --interval seconds.")
    var watch = false

    @Option(help: "Seconds between two prints with --watch (1–3600).")
    var interval: Int = 2

    @Option(help: "With --watch, stop after this many prints (0: until stopped).")
    var count: Int = 0

    func validate() throws {
        guard (1...3600).contains(interval) else { throw ValidationError("--interval must be from 1 to 3600") }
        guard count >= 0 else { throw ValidationError("--count must be 0 or more") }
    }

    func run() async throws {
        let client = try options.client()
        if watch {
            try await Self.watch(client, interval: interval, count: count, command: "weft status")
            return
        }
        do {
            try await Self.show(client)
        } catch let failure as APIClient.Failure {
            printError("weft status: \(failure)")
            throw ExitCode(1)
        }
    }

    /// Prints the status every `interval` seconds, `count` times (0: forever). A failed read is
    /// printed and retried at the next interval: a site that restarts comes back on screen.
    static func watch(_ client: APIClient, interval: Int, count: Int, command: String) async throws {
        var printed = 0
        while count == 0 || printed < count {
            if printed > 0 {
                try await Task.sleep(for: .seconds(interval))
                print("")
            }
            print("--- \(ISO8601DateFormatter().string(from: Date()))")
            do {
                try await show(client)
            } catch {
                print("\(command): \(error)")
            }
            fflush(nil)  // every stream: a pipe reader sees each print at once
            printed += 1
        }
    }

    static func counted(_ value: Int, _ noun: String) -> String { "\(value) \(noun)\(value == 1 ? "" : "s")" }

    static func show(_ client: APIClient) async throws {
        let site = try await client.get("/api/v1/site", as: APIModels.Site.self)
        let peers = try await client.get("/api/v1/remoteSites", as: [APIModels.RemoteSite].self)
        let tunnels = try await client.get("/api/v1/tunnels", as: [APIModels.Tunnel].self)
        let exposed = try await client.get("/api/v1/localExposedApps", as: [APIModels.ExposedApp].self)
        let remote = try await client.get("/api/v1/remoteApps", as: [APIModels.RemoteApp].self)

        print(
            "site \(WireText.escaped(site.siteName))  \(site.fingerprint)  version \(site.version)  up \(Units.duration(site.uptimeSeconds))"
        )

        print("\nPEERS")
        var peerTable = TextTable("NAME", "ONLINE", "TUNNEL", "ENDPOINTS", "APPS")
        for peer in peers {
            peerTable.add(
                peer.siteName, peer.online ? "yes" : "no", peer.tunnel ? "up" : peer.noPath != nil ? "no path" : "-",
                peer.endpoints.isEmpty ? "-" : peer.endpoints.joined(separator: ","),
                peer.apps.isEmpty ? "-" : peer.apps.joined(separator: ","))
        }
        print(peers.isEmpty ? "  (none)" : peerTable.render(indent: "  "))
        for peer in peers {
            if let reason = peer.noPath { print("  ! \(WireText.escaped(reason)); its clients are refused") }
        }

        print("\nTUNNELS")
        if tunnels.isEmpty { print("  (none)") }
        for tunnel in tunnels {
            print(
                "  \(WireText.escaped(tunnel.peer)): \(counted(tunnel.links.count, "link")), \(counted(tunnel.openStreams, "stream")), sent "
                    + "\(Units.bytes(Double(tunnel.bytesSent))), received \(Units.bytes(Double(tunnel.bytesReceived))), "
                    + "re-sent \(Units.bytes(Double(tunnel.resentBytes)))")
            var links = TextTable(
                "LINK", "TRANSPORT", "PATH", "ROLE", "LOCAL", "REMOTE", "DIALED", "STATE", "RTT", "RATE", "SENT",
                "RECEIVED")
            for link in tunnel.links {
                links.add(
                    "\(link.id)", WireText.escaped(link.transport), link.path.map { WireText.escaped($0) } ?? "-",
                    WireText.escaped(link.role),
                    link.localAddress ?? "?",
                    link.remoteAddress ?? "-",
                    link.dialed ? "here" : "by peer",
                    link.blocked ? "blocked" : link.blockedByPeer ? "blocked by peer" : link.state,
                    link.rttMs.map { String(format: "%.2f ms", $0) } ?? "-",
                    link.rateBitsPerSecond.map { Units.bits(perSecond: $0) } ?? "-",
                    Units.bytes(Double(link.bytesSent)), Units.bytes(Double(link.bytesReceived)))
            }
            if !tunnel.links.isEmpty { print(links.render(indent: "    ")) }
        }

        print("\nEXPOSED APPS")
        var exposedTable = TextTable("NAME", "MODE", "TARGET", "PROXY", "FROM", "STREAMS", "SENT", "RECEIVED")
        for app in exposed {
            let target =
                app.mode == "range"
                ? "ports \(app.portRange.joined(separator: ",")) at \(app.addressRange.joined(separator: ","))"
                : app.appSocket ?? "?"
            exposedTable.add(
                row: [app.appName, app.mode, target, app.proxyProtocol ?? "-", app.source] + Self.traffic(app.traffic))
        }
        print(exposed.isEmpty ? "  (none)" : exposedTable.render(indent: "  "))

        print("\nREMOTE APPS")
        var remoteTable = TextTable("SITE", "APP", "LOCAL SOCKET", "TARGET", "FROM", "STREAMS", "SENT", "RECEIVED")
        for app in remote {
            remoteTable.add(
                row: [app.siteName, app.appName, app.localSocket, app.appSocket ?? "-", app.source]
                    + Self.traffic(app.traffic))
        }
        print(remote.isEmpty ? "  (none)" : remoteTable.render(indent: "  "))
    }

    /// An app's streams (open now / in all) and bytes each way; dashes from a site too old to count.
    static func traffic(_ traffic: AppTrafficCounts?) -> [String] {
        guard let traffic else { return ["-", "-", "-"] }
        return [
            "\(traffic.openStreams)/\(traffic.streams)", Units.bytes(Double(traffic.bytesSent)),
            Units.bytes(Double(traffic.bytesReceived)),
        ]
    }
}
