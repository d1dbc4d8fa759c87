import NIOCore
import NIOPosix
import WeftWire

/// Learns the site's public address with a STUN binding request (RFC 5389) over UDP
/// (`autoStunDetect`). The request is sent again after 0.5, 1 and 2 s, as RFC 5389 asks,
/// within one overall timeout.
public struct STUNAddressDetector: Sendable {
    /// `HOST[:PORT]` (host may be a name; IPv6 in brackets); the port defaults to 3478.
    public var server: String
    public var timeout: TimeAmount

    public init(server: String, timeout: TimeAmount = .seconds(5)) {
        self.server = server
        self.timeout = timeout
    }

    public func detect(group: EventLoopGroup) async throws -> IPAddress {
        let (host, port) = try Self.hostAndPort(server)
        let remote = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let transactionID = (0..<12).map { _ in UInt8.random(in: 0...255) }
        let loop = group.next()
        let answer = loop.makePromise(of: StunBinding.Mapped.self)
        let channel: Channel
        do {
            channel = try await DatagramBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ResponseHandler(transactionID: transactionID, promise: answer))
                    }
                }
                .bind(host: remote.protocol == .inet6 ? "::" : "0.0.0.0", port: 0).get()
        } catch {
            answer.fail(error)  // never left pending (NIO reports leaked promises)
            throw error
        }
        defer { channel.close(promise: nil) }
        let request = StunBinding.request(transactionID: transactionID)
        var retransmits: [Scheduled<Void>] = []
        for delay in [0, 500, 1500, 3500] where delay < timeout.nanoseconds / 1_000_000 {
            retransmits.append(
                loop.scheduleTask(in: .milliseconds(Int64(delay))) {
                    channel.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: request), promise: nil)
                })
        }
        let timer = loop.scheduleTask(in: timeout) {
            answer.fail(DetectionError(.timedOut, "no STUN answer from \(server) within \(timeout)"))
        }
        defer {
            timer.cancel()
            for task in retransmits { task.cancel() }
        }
        let mapped = try await answer.futureResult.get()
        guard let address = IPAddress(bytes: mapped.address) else {
            throw DetectionError(.badAnswer, "bad STUN address")
        }
        return address
    }
}

extension STUNAddressDetector {
    public static let defaultPort = 3478

    static func hostAndPort(_ server: String) throws -> (String, Int) {
        if case .success(let (host, portText)) = HostPort.split(server), !host.isEmpty,
            !(host.contains(":") && !server.hasPrefix("["))
        {
            guard case .success(let port) = HostPort.parsePort(portText) else {
                throw DetectionError(.invalidSetting, "\(server): \"\(portText)\" is not a port")
            }
            return (host, port)
        }
        if server.hasPrefix("[") && server.hasSuffix("]") {
            return (String(server.dropFirst().dropLast()), defaultPort)
        }
        guard !server.isEmpty else { throw DetectionError(.invalidSetting, "empty STUN server") }
        return (server, defaultPort)
    }
}

/// Takes the first valid answer to this request; anything else arriving on the port is ignored.
private final class ResponseHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let transactionID: [UInt8]
    private let promise: EventLoopPromise<StunBinding.Mapped>

    init(transactionID: [UInt8], promise: EventLoopPromise<StunBinding.Mapped>) {
        self.transactionID = transactionID
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        if let mapped = try? StunBinding.parseResponse(envelope.data, transactionID: transactionID) {
            promise.succeed(mapped)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // ICMP unreachable and the like: keep waiting for a retransmit's answer or the timeout.
    }
}

@available(*, unavailable)
extension ResponseHandler: Sendable {}
