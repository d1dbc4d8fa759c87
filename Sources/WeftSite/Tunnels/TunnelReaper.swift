import ServiceLifecycle

/// Ends tunnels to peers the directory has lost once they have had no link for the manager's
/// `deadPeerGrace`, and publishes every tunnel's gauges about once a second. Runs until
/// cancelled or a graceful shutdown.
public struct TunnelReaper: Service {
    public let manager: TunnelManager
    /// How often lost peers are checked (gauges every fourth round).
    public var interval: Duration

    public init(manager: TunnelManager, interval: Duration = .milliseconds(250)) {
        self.manager = manager
        self.interval = interval
    }

    public func run() async throws {
        var round = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            round &+= 1
            if round % 4 == 0 { manager.publishMetrics() }
            manager.reap(now: .now)
            try await Task.sleep(for: interval)
        }
    }
}
