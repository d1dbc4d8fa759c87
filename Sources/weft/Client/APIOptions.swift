import ArgumentParser
import Foundation
import WeftSite
import WeftWire

/// How a command reaches the site's API: from `restfulApi` in the config, or `--api`.
struct APIOptions: ParsableArguments {
    @OptionGroup var config: ConfigOption

    @Option(help: ArgumentHelp("The API's base URL (default: restfulApi.listenAddr of the config).", valueName: "url"))
    var api: String?

    @Option(
        help: ArgumentHelp(
            "Basic auth user (default: the first restfulApi.auth.basicAuth user of the config). Its password "
                + "comes from --password-file or WEFT_API_PASSWORD, never the command line (ps shows it to everyone).",
            valueName: "user"))
    var user: String?

    @Option(help: ArgumentHelp("File whose first line is the --user's password.", valueName: "file"))
    var passwordFile: String?

    /// Where `--user`'s password is read from when no file is given.
    static let passwordVariable = "WEFT_API_PASSWORD"

    @Option(help: ArgumentHelp("PEM file that the API's TLS certificate must chain to.", valueName: "file"))
    var cacert: String?

    @Flag(help: "Do not verify the API's TLS certificate.")
    var insecure = false

    /// `--user`'s password, from the file or the environment.
    func password(for user: String) throws -> String {
        if user.contains(":") {
            throw ValidationError(
                "--user takes a user name only: a password on the command line is visible to every local user; "
                    + "put it in a file (--password-file) or in \(Self.passwordVariable)")
        }
        if let passwordFile {
            guard let data = FileManager.default.contents(atPath: passwordFile) else {
                throw ValidationError("--password-file: cannot read \(passwordFile)")
            }
            let text = String(decoding: data, as: UTF8.self)
            return String(text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
                .trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
        }
        if let password = ProcessInfo.processInfo.environment[Self.passwordVariable] { return password }
        throw ValidationError("--user \(user): no password; use --password-file FILE or \(Self.passwordVariable)")
    }

    func client() throws -> APIClient {
        var url = api
        var credentials = try user.map { "\($0):\(try password(for: $0))" }
        if url == nil || credentials == nil, url == nil || config.config != nil {
            let settings = try ConfigFile.load(config.config).configuration.restfulApi
            if url == nil {
                guard settings.enabled else {
                    throw ValidationError("restfulApi is not enabled in the configuration; enable it or pass --api URL")
                }
                var host = settings.listenHost
                if host.isEmpty || host == "0.0.0.0" { host = "127.0.0.1" } else if host == "::" { host = "::1" }
                url = "\(settings.tlsEnabled ? "https" : "http")://\(String(host: host, port: settings.listenPort))"
            }
            if credentials == nil, let first = settings.basicAuth.first {
                credentials = "\(first.user):\(first.password)"
            }
        }
        guard let text = url, let parsed = URL(string: text) else { throw ValidationError("--api: not a URL") }
        return APIClient(baseURL: parsed, credentials: credentials, caFile: cacert, insecure: insecure)
    }
}
