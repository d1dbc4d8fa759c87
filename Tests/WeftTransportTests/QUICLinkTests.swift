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

/// Links over QUIC (ngtcp2 with GnuTLS) on loopback: a big transfer with churn, refusals,
/// hostile datagrams, and proof that the link is UDP.
@Suite("links over QUIC", .serialized, .timeLimit(.minutes(10)))
struct QUICLinkTests {
    /// Beta listens on QUIC with its identity; alpha dials with its own. A debug build moves
    /// bytes slowly enough that the default 2 s silence limit could fire on a loaded machine.
    static func quicPair(silenceLimit: Duration? = .seconds(20)) throws -> TunnelPair {
        try TunnelPair(
            endpoint: { LinkEndpoint(transport: .quic, host: "127.0.0.1", port: $0) },
            silenceLimit: silenceLimit,
            transports: { alpha, beta in
                (listen: try QUICLinkTransport(identity: beta), dial: try QUICLinkTransport(identity: alpha))
            })
    }

    @Test("3 QUIC links move 1 GiB in three streams, sha256 equal, while links are closed and re-dialed")
    func gigabyteWithChurn() async throws {
        try await HeavyTestGate.exclusive {
            try await TunnelOverTLSTests.gigabyteWithChurn(try Self.quicPair(), label: "quic")
        }
    }

    @Test("a stranger's certificate and a wrong pin are refused in QUIC's handshake; the tunnel is unharmed")
    func refusals() async throws {
        let pair = try Self.quicPair()
        try await pair.listen()
        try await pair.dial()

        // A stranger claiming to be alpha, with a certificate of its own: beta's verify
        // callback refuses it before any hello.
        let stranger = try QUICLinkTransport(identity: .generate())
        let refused = await #expect(throws: LinkError.self) { try await pair.dial(over: stranger) }
        #expect(refused?.code == .handshakeFailed || refused?.code == .closed, "\(String(describing: refused))")
        // Alpha expecting another certificate for beta refuses beta's.
        let mismatch = await #expect(throws: LinkError.self) {
            try await pair.dial(expecting: try SiteIdentity.generate().fingerprint)
        }
        #expect(mismatch?.code == .handshakeFailed, "\(String(describing: mismatch))")
        #expect(mismatch?.message.contains("not the one expected") == true, "\(String(describing: mismatch))")
        // A dialer that believes beta is an earlier incarnation is refused by weft's handshake.
        do {
            try await pair.dial(peerIncarnation: 201)
            Issue.record("a link into a stale tunnel was accepted")
        } catch let error as LinkError {
            #expect(error.refusal?.reason == .unknownTunnel, "\(error)")
        }
        #expect(try await LinkTransportTests.transfer(pair, bytes: 1 << 20))
        let links = try await pair.beta.eventLoop.submit { pair.beta.linkCount }.get()
        #expect(links == 1)
        try await pair.shutdown()
    }

    @Test("garbage datagrams and forged Initials at the QUIC port change nothing; ss shows the link is UDP")
    func garbageDatagrams() async throws {
        let pair = try Self.quicPair()
        try await pair.listen()
        try await pair.dial()
        let target = try SocketAddress(ipAddress: "127.0.0.1", port: pair.port)
        let sender = try await DatagramBootstrap(group: pair.group).bind(host: "127.0.0.1", port: 0).get()
        var generator = SystemRandomNumberGenerator()
        func datagram(_ bytes: [UInt8]) -> AddressedEnvelope<ByteBuffer> {
            AddressedEnvelope(remoteAddress: target, data: ByteBuffer(bytes: bytes))
        }
        func random(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) } }
        var hostile: [[UInt8]] = [[], [0x00], [0xc0], [0xff, 0xff, 0xff, 0xff]]
        for _ in 0..<300 { hostile.append(random(Int.random(in: 1...1500))) }
        for _ in 0..<100 {
            // Long-header Initials of QUIC v1 with random IDs and a random (undecryptable) body.
            var initial: [UInt8] =
                [0xc3, 0x00, 0x00, 0x00, 0x01, 16] + random(16) + [8] + random(8) + [0x00, 0x44, 0xb0]
            initial += random(1200 - initial.count)
            hostile.append(initial)
        }
        for _ in 0..<50 {
            // An unknown version, and short headers with connection IDs nobody issued.
            hostile.append([0xc0, 0x0a, 0x0a, 0x0a, 0x0a, 8] + random(8) + [8] + random(8) + random(1200))
            hostile.append([0x40] + random(16) + random(100))
        }
        for bytes in hostile { sender.write(datagram(bytes), promise: nil) }
        try await sender.writeAndFlush(datagram([0x40] + random(40))).get()
        try await sender.close()

        // The link still carries a stream, and no connection came out of the garbage.
        #expect(try await LinkTransportTests.transfer(pair, bytes: 4 << 20))
        let links = try await pair.beta.eventLoop.submit { pair.beta.linkCount }.get()
        #expect(links == 1)
        try await pair.dial()
        #expect(try await LinkTransportTests.transfer(pair, bytes: 1 << 20))

        // The link's socket is UDP: ss lists beta's port among this process's UDP sockets,
        // and this process listens on no TCP socket of that number. (Only this process's
        // listeners: UDP and TCP share the ephemeral range, so another program's TCP socket
        // may well have the same number — seen once in CI, as a TIME-WAIT.)
        let ss = "/usr/bin/ss"
        if TestEnvironment.runs(needing: ss) {
            let ours = "pid=\(getpid()),"
            func lines(_ output: String) -> [Substring] {
                output.split(separator: "\n").filter { $0.contains("127.0.0.1:\(pair.port) ") && $0.contains(ours) }
            }
            let udp = try await ChildProcess.run(ss, ["-u", "-a", "-n", "-p"]).stdout
            let tcp = try await ChildProcess.run(ss, ["-t", "-l", "-n", "-p"]).stdout
            #expect(!lines(udp).isEmpty, "\(udp)")
            #expect(lines(tcp).isEmpty, "\(tcp)")
        }
        try await pair.shutdown()
    }
}
