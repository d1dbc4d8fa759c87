import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import Prometheus
import ServiceLifecycle
import WeftSite

/// The operator's HTTP API (`restfulApi`), run as a service beside the site: basic auth when
/// users are configured, TLS when enabled.
public struct APIService: Service {
    public let settings: RestfulAPISettings
    let api: SiteAPI
    let logger: Logger

    public init(
        settings: RestfulAPISettings, handle: SiteHandle, registry: PrometheusCollectorRegistry?, logger: Logger
    ) {
        self.settings = settings
        self.api = SiteAPI(
            handle: handle, registry: registry, verifier: BasicAuthVerifier(users: settings.basicAuth), logger: logger)
        self.logger = logger
    }

    /// The API's router: the middlewares (access log, request guard, basic auth) and every route.
    func makeRouter() throws -> Router<BasicRequestContext> {
        let router = Router()
        if let file = settings.logFile, !file.isEmpty {
            let sink = try LogSink(appendingTo: file)
            let access = Logger(label: "weft.api") { label in
                WeftLogHandler(label: label, level: .info, format: .text, sink: sink)
            }
            router.add(middleware: AccessLogMiddleware(logger: access, level: .info))
        } else {
            router.add(middleware: AccessLogMiddleware(logger: logger, level: .debug))
        }
        router.add(middleware: RequestGuardMiddleware(listenHost: settings.listenHost, logger: logger))
        router.add(
            middleware: BasicAuthMiddleware(verifier: api.verifier, logger: logger))
        if settings.basicAuth.isEmpty {
            logger.warning(
                "the REST API has no users: anyone who can reach its address can read this site and change its apps; add restfulApi.auth.basicAuth",
                metadata: [
                    "listen": "\(settings.listenHost.isEmpty ? "*" : settings.listenHost):\(settings.listenPort)"
                ])
        }
        api.addRoutes(to: router)
        return router
    }

    public func run() async throws {
        let router = try makeRouter()
        let server: HTTPServerBuilder
        if settings.tlsEnabled, let certificate = settings.tlsCertFile, let key = settings.tlsKeyFile {
            let tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
            server = try .tls(.http1(), tlsConfiguration: tls)
        } else {
            server = .http1()
        }
        let host = settings.listenHost.isEmpty ? "0.0.0.0" : settings.listenHost
        let scheme = settings.tlsEnabled ? "https" : "http"
        let logger = self.logger
        let auth = settings.basicAuth.isEmpty ? "none" : "basic"
        let app = Application(
            router: router,
            server: server,
            configuration: .init(address: .hostname(host, port: settings.listenPort), serverName: "weft"),
            onServerRunning: { channel in
                logger.info(
                    "REST API listening",
                    metadata: [
                        "address": "\(scheme)://\(channel.localAddress.map { "\($0)" } ?? "?")", "auth": "\(auth)",
                    ])
            },
            logger: logger
        )
        try await app.run()
    }
}
