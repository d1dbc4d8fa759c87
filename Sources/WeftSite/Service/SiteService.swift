import Logging
import ServiceLifecycle
import WeftIdentity

/// The running site: the root service that the daemon's `ServiceGroup` keeps alive.
///
/// It owns the site's lifetime. Discovery, tunnels and app sockets join it as child services
/// as they are built; today it announces what it would serve and waits for shutdown.
public struct SiteService: Service {
    public let configuration: SiteConfiguration
    public let identity: SiteIdentity
    private let logger: Logger

    public init(configuration: SiteConfiguration, identity: SiteIdentity, logger: Logger) {
        self.configuration = configuration
        self.identity = identity
        self.logger = logger
    }

    public func run() async throws {
        logger.info(
            "site running",
            metadata: [
                "site": .string(configuration.siteName),
                "fingerprint": .string(identity.fingerprint.description),
                "broker": .string(configuration.messageChannel.mqtt.broker.description),
                "exposedApps": .stringConvertible(configuration.localExposedApps.count),
                "remoteApps": .stringConvertible(configuration.remoteApps.count),
            ]
        )
        for socket in configuration.tunnel.localSockets where socket.transportProtocol == .quic {
            logger.warning(
                "quic links do not exist yet; TLS over TCP is used on the same port",
                metadata: ["listen": .string("\(socket.listenAddress) port \(socket.listenPort)")]
            )
        }
        // Returns when SIGTERM or SIGINT starts a graceful shutdown (or the task is cancelled).
        try? await gracefulShutdown()
        logger.info("site stopping", metadata: ["site": .string(configuration.siteName)])
    }
}
