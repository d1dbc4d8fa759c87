import NIOCore
import NIOPosix
import NIOSSL
import Testing
import WeftIdentity
import WeftTransport

/// Echoes every byte back: the far end of the test links.
final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }
}

/// Sends a greeting once TLS is up and completes with the first reply, or with the failure.
final class GreetingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let reply: EventLoopPromise<String>

    init(reply: EventLoopPromise<String>) {
        self.reply = reply
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(NIOAny(ByteBuffer(string: "hello")), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reply.succeed(String(buffer: unwrapInboundIn(data)))
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        reply.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        reply.fail(ChannelError.eof)
    }
}

@Suite("link TLS: mutual TLS 1.3 with pinned fingerprints, on loopback", .timeLimit(.minutes(10)))
struct LinkTLSTests {
    let server: SiteIdentity
    let client: SiteIdentity

    init() throws {
        server = try SiteIdentity.generate()
        client = try SiteIdentity.generate()
    }

    /// Runs one connection; returns the echoed text or throws the handshake failure.
    func exchange(serverAccepts: @escaping LinkTLS.PeerPolicy, clientExpects: CertificateFingerprint) async throws
        -> String
    {
        let group = MultiThreadedEventLoopGroup.singleton
        let serverTLS = try LinkTLS(identity: server)
        let clientTLS = try LinkTLS(identity: client)
        let listener = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(serverTLS.makeServerHandler(policy: serverAccepts))
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { listener.close(promise: nil) }
        let port = try #require(listener.localAddress?.port)
        let reply = group.next().makePromise(of: String.self).failing(after: PatternSender.deadline)
        let connection = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        try clientTLS.makeClientHandler(expecting: clientExpects))
                    try channel.pipeline.syncOperations.addHandler(GreetingHandler(reply: reply))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        defer { connection.close(promise: nil) }
        return try await reply.futureResult.get()
    }

    @Test("both sides pinned: data flows")
    func pinnedBothWays() async throws {
        let clientFingerprint = client.fingerprint
        let text = try await exchange(serverAccepts: { $0 == clientFingerprint }, clientExpects: server.fingerprint)
        #expect(text == "hello")
    }

    @Test("a server with another certificate than the pinned one is refused")
    func wrongServer() async throws {
        let other = try SiteIdentity.generate()
        let clientFingerprint = client.fingerprint
        // The client's own check refuses the certificate (not a closed connection or a timeout).
        let error = await #expect(throws: NIOSSLError.self) {
            _ = try await exchange(serverAccepts: { $0 == clientFingerprint }, clientExpects: other.fingerprint)
        }
        #expect("\(String(describing: error))".contains("CERTIFICATE_VERIFY_FAILED"), "\(String(describing: error))")
    }

    @Test("a client whose certificate the server has not pinned is refused")
    func wrongClient() async throws {
        let other = try SiteIdentity.generate()
        let otherFingerprint = other.fingerprint
        // The server refused the client's certificate and told it so (a TLS alert).
        let error = await #expect(throws: BoringSSLError.self) {
            _ = try await exchange(serverAccepts: { $0 == otherFingerprint }, clientExpects: server.fingerprint)
        }
        #expect("\(String(describing: error))".contains("CERTIFICATE_UNKNOWN"), "\(String(describing: error))")
    }
}
