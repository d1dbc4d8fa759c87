import Foundation
import WeftDiscovery
import WeftWire
import Yams

/// Turns a YAML tree into a `SiteConfiguration`, applying wovenet's defaults and weft's checks,
/// and collecting every problem at once.
struct SiteConfigurationDecoder {
    /// Directory that relative file paths in the config are resolved against.
    var baseDirectory: String
    /// `$HOME`, for `~` in paths and the default state directory.
    var homeDirectory: String

    static let rootKeys = [
        "siteName", "crypto", "logger", "messageChannel", "tunnel", "localExposedApps", "remoteApps",
        "restfulApi", "stateDir", "stun", "speedtest",
    ]

    func decode(_ root: Node?, reader: ConfigReader) -> SiteConfiguration? {
        guard let top = reader.mapping(root, path: "", fallbackMark: nil, keys: Self.rootKeys) else { return nil }

        let siteName = decodeName(reader, top, "siteName", required: true)
        let crypto = decodeCrypto(reader, top)
        let key = crypto?.key
        let logger = decodeLogger(reader, top)
        let channel = decodeMessageChannel(reader, top, key: key)
        let stun = reader.stringList(top, "stun").compactMap { decodeServer(reader, $0, defaultPort: 3478) }
        let tunnel = decodeTunnel(reader, top, haveStun: !stun.isEmpty)
        let exposed = decodeExposedApps(reader, top)
        let remote = decodeRemoteApps(reader, top, ownSite: siteName)
        let api = decodeRestfulAPI(reader, top)
        let speedtest = reader.section(top, "speedtest", keys: ["allowDownload"]).map {
            SpeedtestSettings(allowDownload: reader.bool($0, "allowDownload")?.value ?? false)
        }
        let stateDir = reader.string(top, "stateDir").flatMap { decodePath(reader, $0) } ?? homeDirectory + "/.weft"

        checkListenerConflicts(reader, tunnel: tunnel, remote: remote, api: api)

        guard !reader.hasErrors, let siteName, let crypto, let channel, let tunnel, let api else { return nil }
        return SiteConfiguration(
            siteName: siteName,
            crypto: crypto,
            logger: logger ?? LoggerSettings(),
            messageChannel: channel,
            tunnel: tunnel.settings,
            localExposedApps: exposed,
            remoteApps: remote.map(\.config),
            restfulApi: api.settings,
            stateDir: stateDir,
            stun: stun,
            speedtest: speedtest ?? .init()
        )
    }

    // MARK: one app (an API request's body)

    /// One `localExposedApps` entry on its own, checked exactly as in the file. Diagnostics
    /// name fields relative to the entry (`appSocket`, not `localExposedApps[0].appSocket`).
    func decodeExposedApp(_ node: Node, reader: ConfigReader) -> ExposedAppConfig? {
        guard
            let top = reader.mapping(
                Self.wrap(node, in: "localExposedApps"), path: "", fallbackMark: nil, keys: Self.rootKeys)
        else { return nil }
        let apps = decodeExposedApps(reader, top)
        return reader.hasErrors ? nil : apps.first
    }

    /// One `remoteApps` entry on its own (see `decodeExposedApp`).
    func decodeRemoteApp(_ node: Node, ownSite: String, reader: ConfigReader) -> RemoteAppConfig? {
        guard
            let top = reader.mapping(
                Self.wrap(node, in: "remoteApps"), path: "", fallbackMark: nil, keys: Self.rootKeys)
        else { return nil }
        let apps = decodeRemoteApps(reader, top, ownSite: ownSite)
        return reader.hasErrors ? nil : apps.first?.config
    }

    static func wrap(_ node: Node, in key: String) -> Node {
        .mapping(Node.Mapping([(Node(key), .sequence(Node.Sequence([node])))]))
    }

    // MARK: names and keys

    /// A site or app name: 1–255 bytes, no control characters.
    func decodeName(_ reader: ConfigReader, _ mapping: ConfigReader.Mapping, _ key: String, required: Bool)
        -> String?
    {
        guard let name = reader.string(mapping, key, required: required) else { return nil }
        return checkName(reader, name)
    }

    func checkName(_ reader: ConfigReader, _ name: Located<String>) -> String? {
        if name.value.isEmpty {
            reader.invalid(name, "must not be empty")
        } else if name.value.utf8.count > 255 {
            reader.error(name.path, at: name.mark, "is \(name.value.utf8.count) bytes long — the limit is 255")
        } else if name.value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            reader.invalid(name, "must not contain control characters")
        } else {
            return name.value
        }
        return nil
    }

    // MARK: cross-checks

    /// Two listeners on the same address and port (or one on the wildcard) cannot both start.
    func checkListenerConflicts(
        _ reader: ConfigReader,
        tunnel: DecodedTunnel?,
        remote: [DecodedRemoteApp],
        api: DecodedAPI?
    ) {
        var listeners: [Located<HostPort>] = tunnel?.listeners ?? []
        for app in remote {
            if case .tcp(let address, let port) = app.config.localSocket {
                listeners.append(
                    Located(
                        value: HostPort(address: address, port: port), mark: app.mark, path: app.path + ".localSocket"))
            }
        }
        if let listener = api?.listener { listeners.append(listener) }
        checkClashes(reader, listeners)
        var udpListeners = tunnel?.udpListeners ?? []
        for app in remote {
            if case .udp(let address, let port) = app.config.localSocket {
                udpListeners.append(
                    Located(
                        value: HostPort(address: address, port: port), mark: app.mark, path: app.path + ".localSocket"))
            }
        }
        checkClashes(reader, udpListeners)
        var unixPaths: [String: String] = [:]
        for app in remote {
            if case .unix(let path) = app.config.localSocket {
                if let other = unixPaths[path] {
                    reader.error(app.path + ".localSocket", at: app.mark, "unix:\(path) is already used by \(other)")
                } else {
                    unixPaths[path] = app.path + ".localSocket"
                }
            }
        }
    }

    /// Listeners of one protocol (TCP, or UDP) that cannot all bind.
    private func checkClashes(_ reader: ConfigReader, _ listeners: [Located<HostPort>]) {
        for (index, later) in listeners.enumerated() {
            for earlier in listeners[..<index] where earlier.value.port == later.value.port {
                let a = earlier.value.address.normalized
                let b = later.value.address.normalized
                let clash =
                    a == b || (a.isUnspecified && a.family == b.family) || (b.isUnspecified && a.family == b.family)
                if clash {
                    reader.error(
                        later.path,
                        at: later.mark,
                        "listens on \(describe(later.value)), which \(earlier.path) already uses"
                    )
                }
            }
        }
    }

    func describe(_ hostPort: HostPort) -> String {
        String(host: hostPort.address.description, port: hostPort.port)
    }

    // MARK: paths

    /// `~` and relative paths: relative ones are taken from the config file's directory.
    func decodePath(_ reader: ConfigReader, _ text: Located<String>) -> String? {
        var path = text.value
        if path.utf8.contains(0) {
            reader.invalid(text, "contains a NUL character")
            return nil
        }
        if path == "~" {
            path = homeDirectory
        } else if path.hasPrefix("~/") {
            path = homeDirectory + path.dropFirst(1)
        } else if !path.hasPrefix("/") {
            path = baseDirectory + "/" + path
        }
        return (path as NSString).standardizingPath
    }
}
