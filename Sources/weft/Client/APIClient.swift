import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import WeftWire

/// A small HTTP/1.1 client for the site's own API (`weft status`, `weft speedtest`): one
/// request per connection, the body handed over as it arrives (speedtest streams progress).
struct APIClient: Sendable {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    var baseURL: URL
    /// `user:password` for basic auth.
    var credentials: String?
    /// PEM file of the CA (or the certificate itself) that signs the API's TLS certificate.
    var caFile: String?
    var insecure = false

    /// GET `path` and decode the JSON body as `T`; a status other than 200 is an error with
    /// the API's message.
    func get<T: Decodable>(_ path: String, as type: T.Type) async throws -> T {
        var body = Data()
        let status = try await request("GET", path) { body.append(contentsOf: $0.readableBytesView) }
        guard status == 200 else { throw Failure(description: Self.describe(status: status, body: body, path: path)) }
        do {
            return try JSONDecoder().decode(T.self, from: body)
        } catch {
            throw Failure(description: "GET \(path): unexpected answer: \(error)")
        }
    }

    static func describe(status: Int, body: Data, path: String) -> String {
        struct APIErrorBody: Decodable { var message: String }
        let message =
            (try? JSONDecoder().decode(APIErrorBody.self, from: body))?.message
            ?? String(decoding: body.prefix(200), as: UTF8.self)
        if status == 401 {
            return "the API wants credentials (--user USER with --password-file FILE or WEFT_API_PASSWORD): \(message)"
        }
        return "GET \(path): HTTP \(status): \(message)"
    }

    /// Sends one request; `onBody` gets the response body piece by piece. Returns the status.
    func request(_ method: String, _ path: String, onBody: (ByteBuffer) throws -> Void) async throws -> Int {
        guard let urlHost = baseURL.host, let scheme = baseURL.scheme?.lowercased(),
            scheme == "http" || scheme == "https"
        else { throw Failure(description: "\(baseURL) is not an http:// or https:// URL") }
        // An IPv6 literal without its brackets, for connecting; `Host` gets them back.
        let host = urlHost.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let port = baseURL.port ?? (scheme == "https" ? 443 : 80)
        var tls: NIOSSLContext?
        if scheme == "https" {
            var configuration = TLSConfiguration.makeClientConfiguration()
            if insecure {
                configuration.certificateVerification = .none
            } else if let caFile {
                configuration.trustRoots = .file(caFile)
            }
            tls = try NIOSSLContext(configuration: configuration)
        }
        let serverName = host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(5))
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            try channel.pipeline.syncOperations.addHandler(
                                try NIOSSLClientHandler(context: tls, serverHostname: serverName))
                        }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw Failure(description: "cannot reach the API at \(baseURL): \(error)")
        }
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path)
            head.headers.add(
                name: "Host",
                value: baseURL.port.map { String(host: host, port: $0) } ?? (host.contains(":") ? "[\(host)]" : host))
            head.headers.add(name: "Connection", value: "close")
            if let credentials {
                head.headers.add(name: "Authorization", value: "Basic " + Data(credentials.utf8).base64EncodedString())
            }
            // A server may answer (a 401) and close before the request's end is written: the
            // answer is what counts, and a failed write matters only if none came.
            var writeError: Error?
            do {
                try await outbound.write(contentsOf: [.head(head), .end(nil)])
            } catch {
                writeError = error
            }
            var status = 0
            do {
                for try await part in inbound {
                    switch part {
                    case .head(let response): status = Int(response.status.code)
                    case .body(let bytes): try onBody(bytes)
                    case .end: return status
                    }
                }
            } catch {
                guard status != 0 else { throw writeError ?? error }
                throw error
            }
            if status == 0, let writeError { throw writeError }
            return status
        }
    }
}
