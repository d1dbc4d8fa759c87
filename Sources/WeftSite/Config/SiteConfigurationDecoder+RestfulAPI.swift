import Foundation
import WeftDiscovery
import WeftWire
import Yams

/// `restfulApi`: listen address, TLS, users, access log, socket directory.
extension SiteConfigurationDecoder {
    struct DecodedAPI {
        var settings: RestfulAPISettings
        var listener: Located<HostPort>?
    }

    func decodeRestfulAPI(_ reader: ConfigReader, _ top: ConfigReader.Mapping) -> DecodedAPI? {
        guard
            let api = reader.section(
                top, "restfulApi", keys: ["enabled", "listenAddr", "logger", "tls", "auth", "socketDirectory"])
        else { return nil }
        var settings = RestfulAPISettings()
        var listener: Located<HostPort>?
        settings.enabled = reader.bool(api, "enabled")?.value ?? false
        if let directory = reader.string(api, "socketDirectory"), !directory.value.isEmpty {
            settings.socketDirectory = decodePath(reader, directory).map { ($0 as NSString).standardizingPath }
        }
        if let addr = reader.string(api, "listenAddr"), !addr.value.isEmpty {
            switch HostPort.split(addr.value) {
            case .failure(let error):
                reader.invalid(addr, error.message + " — expected HOST:PORT, e.g. 127.0.0.1:18080")
            case .success(let (host, portText)):
                switch HostPort.parsePort(portText) {
                case .failure(let error):
                    reader.invalid(addr, error.message)
                case .success(let port):
                    if host.isEmpty || host.lowercased() == "localhost" || IPAddress(host) != nil {
                        settings.listenHost = host.isEmpty ? "0.0.0.0" : host
                        settings.listenPort = port
                        let literal = IPAddress(
                            host.isEmpty ? "0.0.0.0" : host.lowercased() == "localhost" ? "127.0.0.1" : host)
                        if let literal {
                            listener = Located(
                                value: HostPort(address: literal, port: port), mark: addr.mark, path: addr.path)
                        }
                    } else {
                        reader.invalid(addr, "expected an IP address (or localhost) before the port")
                    }
                }
            }
        } else {
            listener = Located(
                value: HostPort(address: IPAddress("127.0.0.1")!, port: 18080), mark: api.mark,
                path: api.childPath("listenAddr"))
        }
        if let logger = reader.section(api, "logger", keys: ["file"]), let file = reader.string(logger, "file"),
            !file.value.isEmpty
        {
            settings.logFile = decodePath(reader, file)
        }
        if let tls = reader.section(api, "tls", keys: ["enabled", "key", "cert"]) {
            settings.tlsEnabled = reader.bool(tls, "enabled")?.value ?? false
            for (key, store) in [("key", \RestfulAPISettings.tlsKeyFile), ("cert", \RestfulAPISettings.tlsCertFile)] {
                if let text = reader.string(tls, key), !text.value.isEmpty {
                    let path = decodePath(reader, text)
                    settings[keyPath: store] = path
                    if settings.tlsEnabled, let path { reader.expectReadable(text, path: path) }
                } else if settings.tlsEnabled {
                    reader.missing(tls, key, "TLS needs both key and cert files (PEM)")
                }
            }
        }
        if let auth = reader.section(api, "auth", keys: ["basicAuth"]) {
            var users: Set<String> = []
            for item in reader.sequence(auth, "basicAuth") {
                guard
                    let entry = reader.entry(item, keys: ["user", "password"])
                else { continue }
                let user = reader.string(entry, "user", required: true)
                let password = reader.string(entry, "password", required: true)
                if let user, user.value.isEmpty || user.value.contains(":") {
                    reader.invalid(user, "expected a non-empty user name without \":\"")
                    continue
                }
                if let password, password.value.isEmpty {
                    reader.error(password.path, at: password.mark, "must not be empty")
                    continue
                }
                if let user, let password {
                    if !users.insert(user.value).inserted {
                        reader.invalid(user, "duplicate user")
                    }
                    settings.basicAuth.append(.init(user: user.value, password: password.value))
                }
            }
        }
        if settings.enabled, settings.basicAuth.isEmpty, let listener, !listener.value.address.isLoopback {
            reader.warning(
                api.childPath("auth"),
                at: api.mark,
                "the API listens on \(listener.value.address) without basicAuth — anyone who reaches it can change this site"
            )
        }
        return DecodedAPI(settings: settings, listener: settings.enabled ? listener : nil)
    }
}
