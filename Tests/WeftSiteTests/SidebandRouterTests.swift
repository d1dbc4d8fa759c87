import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import WeftIdentity
import WeftTestSupport
import WeftTransport
import WeftWire

@testable import WeftSite

/// The non-QUIC side of real QUIC sockets on loopback: probes between two listening sockets
/// leave from and arrive at the links' own ports; STUN from the socket itself sees its port.
@Suite("QUIC socket sideband: probes and STUN from the links' own socket", .timeLimit(.minutes(10)))
struct SidebandRouterTests {
    /// A listening QUIC socket on 127.0.0.1 that accepts nothing, and its router.
    func socket(group: EventLoopGroup) async throws -> (Channel, SidebandRouter) {
        let transport = try QUICLinkTransport(identity: .generate())
        let channel = try await transport.listen(
            host: "127.0.0.1", port: 0, group: group, timeout: .seconds(5), trusts: { _, _ in false },
            accept: { _ in nil }
        ).get()
        let sideband = try #require(transport.sideband(for: channel))
        return (channel, SidebandRouter(sideband: sideband))
    }

    @Test("a probe goes from one QUIC port to the other; garbage and strangers reach no handler")
    func probes() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let (alphaChannel, alpha) = try await socket(group: group)
        let (betaChannel, beta) = try await socket(group: group)
        let arrived = NIOLockedValueBox<[(PunchProbe, SocketAddress)]>([])
        beta.onProbe { probe, source in arrived.withLockedValue { $0.append((probe, source)) } }
        let token = [UInt8](repeating: 3, count: 16)
        // Not QUIC, not a probe, not a STUN answer anybody waits for: dropped and counted.
        let stranger = try await DatagramBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        for junk: [UInt8] in [[0x00], [0x00, 0x77, 0x66, 0x74, 1, 9] + token, Array(repeating: 0x01, count: 20)] {
            try await stranger.writeAndFlush(
                AddressedEnvelope(remoteAddress: betaChannel.localAddress!, data: ByteBuffer(bytes: junk)))
        }
        alpha.send(PunchProbe(kind: .probe, token: token), to: betaChannel.localAddress!)
        var got: [(PunchProbe, SocketAddress)] = []
        for _ in 0..<500 {
            got = arrived.withLockedValue { $0 }
            if !got.isEmpty { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(got.count == 1)
        #expect(got.first?.0 == PunchProbe(kind: .probe, token: token))
        // It left from alpha's QUIC port, the one its links use.
        #expect(got.first?.1.port == alphaChannel.localAddress?.port)
        try await stranger.close()
        try await alphaChannel.close()
        try await betaChannel.close()
        try await group.shutdownGracefully()
    }

    @Test(
        "STUN from the QUIC socket sees that socket's own port; a silent server times out",
        .enabled(if: StunServer.isAvailable, "coturn is not installed (apt-get install coturn)"))
    func stun() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (channel, router) = try await socket(group: group)
        let server = try StunServer()
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: server.port)
        // coturn needs a moment to bind; the retransmits cover part of it.
        var found: PunchCandidate?
        for _ in 0..<10 where found == nil {
            found = try? await router.mapping(from: address, timeout: .seconds(1))
        }
        let own = try #require(channel.localAddress?.port)
        #expect(found == PunchCandidate(address: "127.0.0.1", port: UInt16(own)), "\(server.log)")

        let silent = try SocketAddress(ipAddress: "127.0.0.1", port: try FreePort.find())
        let error = await #expect(throws: DetectionError.self) {
            try await router.mapping(from: silent, timeout: .milliseconds(400))
        }
        #expect(error?.code == .timedOut, "\(String(describing: error))")
        try await channel.close()
        try await group.shutdownGracefully()
    }
}
