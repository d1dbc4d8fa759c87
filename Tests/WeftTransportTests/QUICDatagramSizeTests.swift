import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import WeftIdentity
import WeftTestSupport
import WeftTunnel

@testable import WeftTransport

/// How large a QUIC link's datagrams are: as large as the loopback allows when the peer is this
/// host, network-sized (ngtcp2's path MTU discovery, at most 1452 bytes) on any other path.
@Suite("QUIC datagram sizes", .serialized, .timeLimit(.minutes(5)))
struct QUICDatagramSizeTests {
    @Test("the kernel's route tells a peer on this host from any other, and its MTU")
    func hostLocalPath() throws {
        let loopback = try SocketAddress(ipAddress: "127.0.0.1", port: 4433)
        let otherLoopback = try SocketAddress(ipAddress: "127.0.0.2", port: 4433)
        // A lab address: connecting a UDP socket asks for a route and sends nothing.
        let elsewhere = try SocketAddress(ipAddress: "198.18.0.1", port: 4433)
        #expect(QUICHostLocalPath.datagramPayload(to: elsewhere) == nil)
        if System.supportsUDPReceiveOffload {
            // Linux's loopback carries the largest IPv4 packet (65,535 bytes, within its 64 KiB
            // MTU); IPv4 and UDP headers take 28 bytes of it.
            #expect(QUICHostLocalPath.datagramPayload(to: loopback) == 65_535 - 28)
            #expect(QUICHostLocalPath.datagramPayload(to: otherLoopback) == 65_535 - 28)
        } else {
            // Without UDP GRO the peer's reads take 2 KiB datagrams: nothing larger is sent.
            #expect(QUICHostLocalPath.datagramPayload(to: loopback) == nil)
        }
        // One of this host's own addresses on another interface routes over loopback too.
        let own = try System.enumerateDevices().compactMap(\.address).first {
            if case .v4 = $0, $0.ipAddress?.hasPrefix("127.") == false { return true }
            return false
        }
        if let own, System.supportsUDPReceiveOffload {
            let address = try SocketAddress(ipAddress: own.ipAddress!, port: 4433)
            #expect(QUICHostLocalPath.datagramPayload(to: address) != nil, "\(address)")
        }
        let remote = try SocketAddress(ipAddress: "10.1.2.3", port: 1)
        #expect(QUICHostLocalPath.isThisHost(remote, source: try SocketAddress(ipAddress: "10.1.2.3", port: 9)))
        #expect(!QUICHostLocalPath.isThisHost(remote, source: try SocketAddress(ipAddress: "10.1.2.4", port: 9)))
        #expect(!QUICHostLocalPath.isThisHost(remote, source: nil))
        #expect(QUICHostLocalPath.isThisHost(try SocketAddress(ipAddress: "::1", port: 1), source: nil))
    }

    @Test(
        "a link to a peer on this host sends datagrams of up to 16 KB",
        .enabled(if: System.supportsUDPReceiveOffload, "this kernel has no UDP GRO: links keep network-sized packets"))
    func hostLocalDatagrams() async throws {
        try await datagramsOnTheWire(hostLocal: true)
    }

    @Test("with host-local datagrams turned off, a link sends network-sized ones (path MTU discovery)")
    func networkSizedDatagrams() async throws {
        try await datagramsOnTheWire(hostLocal: false)
    }

    private func datagramsOnTheWire(hostLocal: Bool) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let target = NIOLockedValueBox<SocketAddress?>(nil)
        let largest = NIOLockedValueBox(0)
        // Alpha dials a forwarder, which notes every datagram's size on the way to beta.
        let forwarder = try await DatagramBootstrap(group: group)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DatagramForwarder(target: target, largest: largest))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let forwarderPort = forwarder.localAddress!.port!
        var configuration = QUICConfiguration()
        if !hostLocal { configuration.hostLocalDatagramSize = 0 }
        let pair = try TunnelPair(
            endpoint: { _ in LinkEndpoint(transport: .quic, host: "127.0.0.1", port: forwarderPort) },
            silenceLimit: .seconds(20),
            transports: { alpha, beta in
                (
                    listen: try QUICLinkTransport(identity: beta, configuration: configuration),
                    dial: try QUICLinkTransport(identity: alpha, configuration: configuration)
                )
            })
        try await pair.listen()
        target.withLockedValue { $0 = try? SocketAddress(ipAddress: "127.0.0.1", port: pair.port) }
        try await pair.dial()
        #expect(try await LinkTransportTests.transfer(pair, bytes: 8 << 20))
        let seen = largest.withLockedValue { $0 }
        if hostLocal {
            #expect(seen > 1_500 && seen <= configuration.hostLocalDatagramSize, "largest datagram \(seen) bytes")
        } else {
            #expect(seen >= 1_200 && seen <= 1_452, "largest datagram \(seen) bytes")
        }
        try await pair.shutdown()
        try await forwarder.close()
        try await group.shutdownGracefully()
    }
}

/// Passes datagrams between one client and the target, and notes the largest from the client.
private final class DatagramForwarder: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let target: NIOLockedValueBox<SocketAddress?>
    private let largest: NIOLockedValueBox<Int>
    private var client: SocketAddress?

    init(target: NIOLockedValueBox<SocketAddress?>, largest: NIOLockedValueBox<Int>) {
        self.target = target
        self.largest = largest
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let target = target.withLockedValue({ $0 }) else { return }
        if envelope.remoteAddress == target {
            guard let client else { return }
            context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: client, data: envelope.data)), promise: nil)
        } else {
            client = envelope.remoteAddress
            let size = envelope.data.readableBytes
            largest.withLockedValue { $0 = max($0, size) }
            context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: target, data: envelope.data)), promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }
}
