import Logging
import ServiceLifecycle
import WeftDiscovery
import WeftIdentity
import WeftWire

/// The running site: the root service that the daemon's `ServiceGroup` keeps alive.
///
/// It owns the site's lifetime: the message channel (presence and the directory of peers)
/// today; tunnels and app sockets join as they are built. A graceful shutdown says goodbye on
/// the message channel before the process exits.
public struct SiteService: Service {
    public let configuration: SiteConfiguration
    public let identity: SiteIdentity
    public let softwareVersion: String
    private let logger: Logger

    public init(configuration: SiteConfiguration, identity: SiteIdentity, softwareVersion: String, logger: Logger) {
        self.configuration = configuration
        self.identity = identity
        self.softwareVersion = softwareVersion
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
        let agent = try DiscoveryAgent(configuration: discoveryConfiguration(), identity: identity, logger: logger)
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await agent.run() }
                group.addTask {
                    // The tunnel manager will consume these; the agent already logs them.
                    for await _ in agent.events {}
                }
            }
        } onGracefulShutdown: {
            agent.leave()
        }
        logger.info("site stopping", metadata: ["site": .string(configuration.siteName)])
    }

    /// The message channel's settings, from the config.
    func discoveryConfiguration() -> DiscoveryAgent.Configuration {
        let mqtt = configuration.messageChannel.mqtt
        let clientID = "weft-\(identity.siteID.prefix(12))-\(UInt32.random(in: 0...UInt32.max))"
        return DiscoveryAgent.Configuration(
            siteName: configuration.siteName,
            mesh: MeshKeys(key: configuration.crypto.key, topic: mqtt.topic),
            mqtt: MQTTClientConfiguration(
                host: mqtt.broker.host,
                port: mqtt.broker.port,
                useTLS: mqtt.broker.useTLS,
                caFile: mqtt.caFile,
                username: mqtt.username,
                password: mqtt.password,
                clientID: clientID,
                keepAlive: mqtt.keepAlive
            ),
            stateDirectory: configuration.stateDir,
            softwareVersion: softwareVersion,
            endpoints: announcedEndpoints(),
            apps: configuration.localExposedApps.map(\.appName)
        )
    }

    /// Sockets with a literal public address are announced as they are; detected addresses
    /// are announced once detection exists.
    func announcedEndpoints() -> [SiteAnnouncement.Endpoint] {
        configuration.tunnel.localSockets.compactMap { socket in
            guard case .literal(let address) = socket.publicAddress else {
                logger.warning(
                    "public address detection (\(socket.publicAddress)) is not available yet; this socket is not announced",
                    metadata: ["listenPort": .stringConvertible(socket.listenPort)]
                )
                return nil
            }
            return SiteAnnouncement.Endpoint(
                linkType: .tls, address: address.description, port: UInt16(socket.publicPort))
        }
    }
}
