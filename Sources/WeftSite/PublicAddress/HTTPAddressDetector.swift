import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import WeftWire

/// Learns the site's public address from an HTTP(S) service that answers a GET with the
/// caller's address as the whole body (`autoHttpDetect`).
///
/// The answer is trusted only as far as it parses: a body that is not exactly one IP address
/// (surrounding whitespace aside) is an error, and bodies over `maxBody` bytes are refused.
public struct HTTPAddressDetector: Sendable {
    public var url: String
    public var timeout: TimeAmount
    public static let maxBody = 256

    public init(url: String, timeout: TimeAmount = .seconds(5)) {
        self.url = url
        self.timeout = timeout
    }

    public func detect(group: EventLoopGroup) async throws -> IPAddress {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), let urlHost = parsed.host,
            scheme == "http" || scheme == "https"
        else { throw DetectionError(.invalidSetting, "\(url) is not an http:// or https:// URL") }
        // An IPv6 literal without its brackets, for connecting; `Host` gets them back.
        let host = urlHost.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let port = parsed.port ?? (scheme == "https" ? 443 : 80)
        var path = parsed.path.isEmpty ? "/" : parsed.path
        if let query = parsed.query { path += "?" + query }
        let hostHeader = parsed.port.map { String(host: host, port: $0) } ?? (host.contains(":") ? "[\(host)]" : host)
        let tls: NIOSSLContext? =
            scheme == "https" ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil
        let loop = group.next()
        let body = loop.makePromise(of: String.self)
        // An IP literal is not a TLS server name (SNI); certificates are still verified.
        let serverName: String? = IPAddress(host) == nil ? host : nil
        let channel: Channel
        do {
            channel = try await connect(
                loop: loop, host: host, port: port, tls: tls, serverName: serverName, body: body)
        } catch {
            let failure = DetectionError(.unreachable, "cannot connect to \(url): \(error)")
            body.fail(failure)  // never left pending (NIO reports leaked promises)
            throw failure
        }
        let timer = loop.scheduleTask(in: timeout) {
            body.fail(DetectionError(.timedOut, "no answer from \(url) within \(timeout)"))
            channel.close(promise: nil)
        }
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
        head.headers.add(name: "Host", value: hostHeader)
        head.headers.add(name: "User-Agent", value: "weft")
        head.headers.add(name: "Accept", value: "text/plain")
        head.headers.add(name: "Connection", value: "close")
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        defer {
            timer.cancel()
            channel.close(promise: nil)
        }
        let text = try await body.futureResult.get().trimmingCharacters(in: .whitespacesAndNewlines)
        guard let address = IPAddress(text) else {
            throw DetectionError(.badAnswer, "\(url) answered \"\(text.prefix(64))\", which is not an IP address")
        }
        return address
    }

    private func connect(
        loop: EventLoop, host: String, port: Int, tls: NIOSSLContext?, serverName: String?,
        body: EventLoopPromise<String>
    ) async throws -> Channel {
        try await ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        let handler = try NIOSSLClientHandler(context: tls, serverHostname: serverName)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(BodyCollector(promise: body))
                }
            }
            .connect(host: host, port: port).get()
    }
}

/// Collects a small response body; a status other than 200 or a big body is an error.
private final class BodyCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    private let promise: EventLoopPromise<String>
    private var body = ByteBuffer()
    private var status: HTTPResponseStatus?

    init(promise: EventLoopPromise<String>) {
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = head.status
        case .body(var part):
            body.writeBuffer(&part)
            if body.readableBytes > HTTPAddressDetector.maxBody {
                promise.fail(DetectionError(.badAnswer, "the answer is over \(HTTPAddressDetector.maxBody) bytes"))
                context.close(promise: nil)
            }
        case .end:
            if status == .ok {
                promise.succeed(String(buffer: body))
            } else {
                promise.fail(DetectionError(.badAnswer, "HTTP status \(status.map { "\($0.code)" } ?? "?")"))
            }
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(DetectionError(.closed, "the connection closed before an answer"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension BodyCollector: Sendable {}

/// Why a public address could not be detected: a code to match, a text to read.
public struct DetectionError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        public var description: String { name }
        /// The setting (URL, server) is unusable.
        public static let invalidSetting = Code(name: "invalidSetting")
        /// No answer within the timeout.
        public static let timedOut = Code(name: "timedOut")
        /// An answer that holds no address (status, size, content).
        public static let badAnswer = Code(name: "badAnswer")
        /// The connection closed before an answer.
        public static let closed = Code(name: "closed")
        /// The server could not be reached (refused, no route, TLS failed).
        public static let unreachable = Code(name: "unreachable")
    }

    public var code: Code
    public var description: String
    public init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }
}
