import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing
import WeftIdentity
import WeftTransport

@testable import WeftSite

/// The handler that holds a new client of a remote app until its tunnel has a link, on a
/// thread-safe test channel (it waits for the tunnel in a task of its own).
@Suite("client arrival: a client waits for its tunnel, within limits", .timeLimit(.minutes(10)))
struct ClientArrivalHandlerTests {
    static func manager() throws -> TunnelManager {
        let identity = try SiteIdentity.generate()
        return TunnelManager(
            configuration: .init(siteName: "here", usedSites: ["there"], exposesApps: false),
            site: LocalLinkSite(siteName: "here", tls: try LinkTLS(identity: identity)), exposedApps: [],
            announcesEndpoints: false, group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"))
    }

    static func client(_ manager: TunnelManager, waiting: Duration) async throws -> NIOAsyncTestingChannel {
        let app = RemoteAppConfig(
            siteName: "there", appName: "web", localSocket: .tcp(IPAddress("127.0.0.1")!, port: 1))
        let channel = NIOAsyncTestingChannel()
        try await channel.pipeline.addHandler(
            ClientArrivalHandler(app: app, manager: manager, connectTimeout: waiting, logger: Logger(label: "test")))
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 50_000))
        return channel
    }

    static func closed(_ channel: NIOAsyncTestingChannel) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if !channel.isActive { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return !channel.isActive
    }

    @Test("no tunnel with a link in time: the client is closed, not left hanging")
    func noTunnel() async throws {
        let manager = try Self.manager()
        let channel = try await Self.client(manager, waiting: .milliseconds(50))
        #expect(channel.isActive)
        #expect(await Self.closed(channel))
        await manager.stop()
    }

    @Test("a client that writes over 1 MiB while it waits is closed at once; less is kept")
    func earlyBytesLimit() async throws {
        let manager = try Self.manager()
        let channel = try await Self.client(manager, waiting: .seconds(60))
        let chunk = ByteBuffer(repeating: 0x61, count: 256 << 10)
        for _ in 0..<4 { try await channel.writeInbound(chunk) }
        #expect(channel.isActive, "1 MiB is allowed")
        try await channel.writeInbound(ByteBuffer(repeating: 0x61, count: 1))
        #expect(await Self.closed(channel))
        await manager.stop()
    }

    @Test("the site stopping ends the wait at once: the client is closed")
    func siteStops() async throws {
        let manager = try Self.manager()
        let channel = try await Self.client(manager, waiting: .seconds(600))
        #expect(channel.isActive)
        await manager.stop()
        #expect(await Self.closed(channel))
    }
}
