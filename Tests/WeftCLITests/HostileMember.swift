import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import WeftDiscovery
import WeftIdentity
import WeftTestSupport
import WeftTransport
import WeftTunnel
import WeftWire

/// A member of the mesh gone bad, run in the test process: a real identity, announced on the
/// lab's broker with the mesh key; links dialed with real TLS and the real handshake. Past the
/// handshake it writes whatever frames it likes, honest or not, and may never read.
final class HostileMember: Sendable {
    let name: String
    let identity: SiteIdentity
    private let key: String
    private let topic: String
    private let brokerPort: Int
    private let stateDirectory: String
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let agents = Mutex<[(agent: DiscoveryAgent, task: Task<Void, Never>)]>([])

    init(_ name: String, lab: SiteLab, key: String, topic: String) throws {
        self.name = name
        self.identity = try SiteIdentity.generate()
        self.key = key
        self.topic = topic
        self.brokerPort = lab.broker.port
        self.stateDirectory = lab.path + "/hostile-\(name)"
    }

    /// Announces `claimedName` (its own name unless given) with these endpoints and apps,
    /// signed with its own identity; returns the agent, whose directory shows the mesh.
    @discardableResult
    func announce(as claimedName: String? = nil, endpoints: [SiteAnnouncement.Endpoint], apps: [String]) throws
        -> DiscoveryAgent
    {
        let site = claimedName ?? name
        let directory = stateDirectory + "/" + site
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var logger = Logger(label: "hostile.\(site)")
        logger.logLevel = .critical
        let agent = try DiscoveryAgent(
            configuration: .init(
                siteName: site, mesh: MeshKeys(key: key, topic: topic),
                mqtt: MQTTClientConfiguration(
                    host: "127.0.0.1", port: brokerPort, clientID: "hostile-\(site)-\(UUID().uuidString.prefix(6))",
                    keepAlive: 5),
                stateDirectory: directory, softwareVersion: "hostile", endpoints: endpoints, apps: apps),
            identity: identity, logger: logger)
        let task = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await agent.run() }
                group.addTask { for await _ in agent.events {} }
            }
        }
        agents.withLock { $0.append((agent, task)) }
        return agent
    }

    /// Dials the peer's first announced endpoint into a new tunnel.
    func dial(_ peer: PeerInfo) async throws -> HostileLink {
        guard let endpoint = peer.announcement.endpoints.first else {
            throw LinkError(.handshakeFailed, "\(peer.siteName) announces no endpoint")
        }
        let target = LinkDialer.Target(
            address: try SocketAddress(ipAddress: endpoint.address, port: Int(endpoint.port)),
            peerSite: peer.siteName, peerIncarnation: LinkHandshake.unknownIncarnation,
            localIncarnation: UInt64.random(in: 1...UInt64.max), fingerprint: peer.fingerprint)
        let frames = FrameRecorder()
        let established = try await LinkDialer.dial(
            target, on: group.next(), site: LocalLinkSite(siteName: name, tls: try LinkTLS(identity: identity)),
            linkNumber: 1
        ) { channel, _ in
            try? channel.pipeline.syncOperations.addHandler(FrameRecorder.Handler(recorder: frames))
        }.get()
        _ = established
        guard let channel = frames.channel else { throw LinkError(.handshakeFailed, "no channel") }
        return HostileLink(channel: channel, frames: frames)
    }

    func stop() async {
        for (agent, task) in agents.withLock({ $0 }) {
            agent.leave()
            await task.value
        }
        try? await group.shutdownGracefully()
    }
}

/// One link of a hostile member: frames out as it chooses, frames in counted.
struct HostileLink: Sendable {
    let channel: Channel
    let frames: FrameRecorder

    /// Writes the frames (serialized as given: the serializer writes any value) and waits until
    /// they are written.
    func send(_ list: [TunnelFrame]) async throws {
        var bytes = ByteBuffer()
        for frame in list { TunnelFrameSerializer().serialize(frame, into: &bytes) }
        try await channel.writeAndFlush(bytes)
    }

    /// Stops reading the link for good: the peer's bytes pile up in its own buffers.
    func stopReading() async throws {
        try await channel.setOption(ChannelOptions.autoRead, value: false).get()
    }

    /// Whether the other side closed the link within `timeout`.
    func closed(within timeout: Duration) async -> Bool {
        await WeftProcess.waitFor(timeout) { !channel.isActive }
    }
}

/// Frames that arrived on a hostile link, parsed as the protocol says.
final class FrameRecorder: Sendable {
    private struct Seen {
        var channel: Channel?
        var resets: [(StreamID, StreamReset.Code)] = []
        var pongs = 0
    }

    private let seen = Mutex(Seen())

    var channel: Channel? { seen.withLock { $0.channel } }
    var resets: [(StreamID, StreamReset.Code)] { seen.withLock { $0.resets } }
    var pongs: Int { seen.withLock { $0.pongs } }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        private let recorder: FrameRecorder
        private var parser = TunnelFrameParser(limits: .default)

        init(recorder: FrameRecorder) { self.recorder = recorder }

        func handlerAdded(context: ChannelHandlerContext) {
            let channel = context.channel
            recorder.seen.withLock { $0.channel = channel }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            parser.append(unwrapInboundIn(data))
            while let frame = try? parser.nextFrame() {
                recorder.seen.withLock { seen in
                    switch frame {
                    case .streamReset(let reset): seen.resets.append((StreamID(reset.streamID), reset.code))
                    case .pong: seen.pongs += 1
                    default: break
                    }
                }
            }
        }
    }
}

@available(*, unavailable)
extension FrameRecorder.Handler: Sendable {}
