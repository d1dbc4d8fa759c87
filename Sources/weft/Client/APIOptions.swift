import ArgumentParser
import Foundation
import WeftSite

/// How a command reaches the site's API: from `restfulApi` in the config, or `--api`.
struct APIOptions: ParsableArguments {
    @OptionGroup var config: ConfigOption

    @Option(help: ArgumentHelp("The API's base URL (default: restfulApi.listenAddr of the config).", valueName: "url"))
    var api: String?

    @Option(
        help: ArgumentHelp(
            "Basic auth credentials (default: the first restfulApi.auth.basicAuth user of the config).",
            valueName: "user:password"))
    var user: String?

    @Option(help: ArgumentHelp("PEM file that the API's TLS certificate must chain to.", valueName: "file"))
    var cacert: String?

    @Flag(help: "Do not verify the API's TLS certificate.")
    var insecure = false

    func client() throws -> APIClient {
        var url = api
        var credentials = user
        if url == nil || credentials == nil, url == nil || config.config != nil {
            let settings = try ConfigFile.load(config.config).configuration.restfulApi
            if url == nil {
                guard settings.enabled else {
                    throw ValidationError("restfulApi is not enabled in the configuration; enable it or pass --api URL")
                }
                var host = settings.listenHost
                if host.isEmpty || host == "0.0.0.0" { host = "127.0.0.1" } else if host == "::" { host = "::1" }
                if host.contains(":") { host = "[\(host)]" }
                url = "\(settings.tlsEnabled ? "https" : "http")://\(host):\(settings.listenPort)"
            }
            if credentials == nil, let first = settings.basicAuth.first {
                credentials = "\(first.user):\(first.password)"
            }
        }
        guard let text = url, let parsed = URL(string: text) else { throw ValidationError("--api: not a URL") }
        return APIClient(baseURL: parsed, credentials: credentials, caFile: cacert, insecure: insecure)
    }
}
