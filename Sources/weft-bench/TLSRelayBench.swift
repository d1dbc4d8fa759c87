import ArgumentParser
import NIOCore
import NIOPosix
import NIOSSL
import WeftIdentity
import WeftTransport

/// `weft-bench tls-relay`: one end of the smallest TLS relay pair SwiftNIO and NIOSSL make.
///
/// Two of these (a `client` end taking plain TCP, a `server` end forwarding to the target) are
/// what any relay built on weft's stack costs at the least: one event loop, each read written
/// straight to the other socket and flushed at the end of the read burst, no framing, no
/// multiplexing, no acks. `scripts/bench/bench.py` runs the pair beside the stunnel pair and
/// weft, so the distance between weft and its stack's floor is measured in the same run.
/// TLS is weft's own link TLS (TLS 1.3, both certificates pinned).
struct TLSRelayBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tls-relay",
        abstract: "One end of a minimal SwiftNIO TLS relay pair (the floor under weft's cost per byte)."
    )

    enum Side: String, ExpressibleByArgument {
        /// Accepts plain TCP, dials the other end with TLS.
        case client
        /// Accepts TLS, dials the target in plain TCP.
        case server
    }

    @Option(help: "client: plain in, TLS out; server: TLS in, plain out.")
    var side: Side

    @Option(help: "The loopback port to accept on.")
    var listen: Int

    @Option(help: "The loopback port to dial for each accepted connection.")
    var connect: Int

    @Option(help: "A directory for the identity both ends share (created if missing).")
    var identityDirectory: String

    func run() async throws {
        let (identity, _) = try IdentityStore(directory: identityDirectory).loadOrCreate()
        let tls = try LinkTLS(identity: identity)
        let fingerprint = identity.fingerprint
        let side = self.side
        let target = connect
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { inbound in
                let loop = inbound.eventLoop
                let inboundGlue: NIOLoopBound<RelayGlue>
                do {
                    if side == .server {
                        try inbound.pipeline.syncOperations.addHandler(tls.makeServerHandler { $0 == fingerprint })
                    }
                    // It holds the accepted socket's reads until its partner is connected.
                    let glue = RelayGlue()
                    try inbound.pipeline.syncOperations.addHandler(glue)
                    inboundGlue = NIOLoopBound(glue, eventLoop: loop)
                } catch {
                    return loop.makeFailedFuture(error)
                }
                ClientBootstrap(group: loop)
                    .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                    .channelInitializer { outbound in
                        outbound.eventLoop.makeCompletedFuture {
                            if side == .client {
                                try outbound.pipeline.syncOperations.addHandler(
                                    tls.makeClientHandler(expecting: fingerprint))
                            }
                            try outbound.pipeline.syncOperations.addHandler(RelayGlue())
                        }
                    }
                    .connect(host: "127.0.0.1", port: target)
                    .whenComplete { result in
                        switch result {
                        case .success(let outbound):
                            guard let glue = try? outbound.pipeline.syncOperations.handler(type: RelayGlue.self)
                            else {
                                inbound.close(promise: nil)
                                return
                            }
                            inboundGlue.value.join(glue)
                        case .failure:
                            inbound.close(promise: nil)
                        }
                    }
                return loop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: listen)
            .get()
        print("tls-relay \(side.rawValue): 127.0.0.1:\(listen) → 127.0.0.1:\(target)")
        try await server.closeFuture.get()
    }
}

/// Joins two channels on one event loop: what one reads the other writes, flushed once per
/// read burst; a side whose partner cannot take more stops reading until it can.
final class RelayGlue: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: RelayGlue?
    private var context: ChannelHandlerContext?
    private var heldRead = false

    /// Pairs two handlers on one loop and lets reads held meanwhile go on.
    func join(_ other: RelayGlue) {
        guard context != nil, other.context != nil else {
            // One side left before they were joined: the other goes too.
            context?.close(promise: nil)
            other.context?.close(promise: nil)
            return
        }
        partner = other
        other.partner = self
        releaseRead()
        other.releaseRead()
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.context?.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.context?.flush()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.closeAfterWrites()
        partner = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.releaseRead() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if partner?.context?.channel.isWritable == true {
            context.read()
        } else {
            heldRead = true
        }
    }

    /// Closes once what was written to this side has gone out (a plain close drops writes
    /// still queued, the end of a flow).
    private func closeAfterWrites() {
        guard let context else { return }
        let channel = context.channel
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(NIOAny(ByteBuffer()), promise: promise)
        promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
    }

    private func releaseRead() {
        guard heldRead, let context else { return }
        heldRead = false
        context.read()
    }
}
