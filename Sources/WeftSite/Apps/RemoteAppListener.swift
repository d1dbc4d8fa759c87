import Foundation
import Logging
import NIOCore
import NIOPosix
import WeftTransport

/// The local socket of one `remoteApps` entry: each client that connects becomes a stream to
/// the app at the other site.
///
/// A client that arrives while the tunnel has no link waits up to `connectTimeout` for one,
/// then is closed — never left hanging. A Unix socket's stale file is removed and its parent
/// directory created before binding.
public struct RemoteAppListener: Sendable {
    public let app: RemoteAppConfig
    public let channel: Channel

    public static func bind(
        _ app: RemoteAppConfig,
        manager: TunnelManager,
        group: EventLoopGroup,
        connectTimeout: Duration,
        logger: Logger
    ) async throws -> RemoteAppListener {
        var logger = logger
        logger[metadataKey: "peer"] = "\(app.siteName)"
        logger[metadataKey: "app"] = "\(app.appName)"
        let clientLogger = logger
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .childChannelOption(ChannelOptions.autoRead, value: false)
            .childChannelInitializer { channel in
                Self.accepted(
                    channel, app: app, manager: manager, connectTimeout: connectTimeout, logger: clientLogger)
                return channel.eventLoop.makeSucceededVoidFuture()
            }
        let channel: Channel
        switch app.localSocket {
        case .tcp(let address, let port):
            channel = try await bootstrap.bind(host: address.description, port: port).get()
        case .unix(let path):
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        }
        logger.info("remote app listening", metadata: ["localSocket": "\(app.localSocket)"])
        return RemoteAppListener(app: app, channel: channel)
    }

    private static func accepted(
        _ channel: Channel, app: RemoteAppConfig, manager: TunnelManager, connectTimeout: Duration, logger: Logger
    ) {
        Task {
            guard let driver = await manager.tunnel(to: app.siteName, within: connectTimeout) else {
                logger.warning(
                    "no tunnel to the site in time; closing the client", metadata: ["waited": "\(connectTimeout)"])
                channel.close(promise: nil)
                return
            }
            let relay = StreamRelay(driver: driver, logger: logger)
            do {
                try await channel.pipeline.addHandler(RelayChannelHandler(relay: relay)).get()
            } catch {
                channel.close(promise: nil)
                return
            }
            driver.eventLoop.execute {
                relay.open(appName: app.appName, target: app.appSocket?.description)
                relay.attach(channel)
            }
        }
    }

    public func close() async {
        try? await channel.close().get()
        if case .unix(let path) = app.localSocket { try? FileManager.default.removeItem(atPath: path) }
    }
}
