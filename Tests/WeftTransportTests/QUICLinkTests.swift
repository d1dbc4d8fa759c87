import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import WeftIdentity
import WeftTestSupport
import WeftTransport
import WeftTunnel
import WeftWire

/// Links over QUIC (ngtcp2 with GnuTLS) on loopback: transfers, refusals, hostile datagrams.
@Suite("links over QUIC", .serialized, .timeLimit(.minutes(10)))
struct QUICLinkTests {
    static func quicPair(silenceLimit: Duration? = .seconds(20)) throws -> TunnelPair {
        try TunnelPair(
            endpoint: { LinkEndpoint(transport: .quic, host: "127.0.0.1", port: $0) },
            silenceLimit: silenceLimit,
            transports: { alpha, beta in
                (listen: try QUICLinkTransport(identity: beta), dial: try QUICLinkTransport(identity: alpha))
            })
    }

    @Test("one QUIC link carries a stream, sha256 equal")
    func oneLink() async throws {
        let pair = try Self.quicPair()
        try await pair.listen()
        try await pair.dial()
        #expect(try await LinkTransportTests.transfer(pair, bytes: 8 << 20))
        let snapshot = try await pair.alpha.eventLoop.submit { pair.alpha.snapshot() }.get()
        #expect(snapshot.links.count == 1)
        #expect(snapshot.links.allSatisfy { $0.transport == .quic })
        try await pair.shutdown()
    }
}
