import Foundation
import WeftDiscovery
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
        "restfulApi", "stateDir", "stun",
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
            stun: stun
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

    private static func wrap(_ node: Node, in key: String) -> Node {
        .mapping(Node.Mapping([(Node(key), .sequence(Node.Sequence([node])))]))
    }

    // MARK: names and keys

    /// A site or app name: 1–255 bytes, no control characters.
    private func decodeName(_ reader: ConfigReader, _ mapping: ConfigReader.Mapping, _ key: String, required: Bool)
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

    // MARK: logger

    private func decodeLogger(_ reader: ConfigReader, _ top: ConfigReader.Mapping) -> LoggerSettings? {
        guard
            let logger = reader.mapping(
                reader.node(top, "logger"),
                path: "logger",
                fallbackMark: top.mark,
                keys: ["level", "format", "file"]
            )
        else { return nil }
        var settings = LoggerSettings()
        if let level = reader.string(logger, "level") {
            let upper = level.value.uppercased()
            if let parsed = LoggerSettings.Level(rawValue: upper == "WARNING" ? "WARN" : upper) {
                settings.level = parsed
            } else {
                reader.invalid(level, "expected DEBUG, INFO, WARN or ERROR")
            }
        }
        if let format = reader.string(logger, "format") {
            if let parsed = LoggerSettings.Format(rawValue: format.value.lowercased()) {
                settings.format = parsed
            } else {
                reader.invalid(format, "expected text or json")
            }
        }
        if let file = reader.string(logger, "file"), !file.value.isEmpty {
            settings.file = decodePath(reader, file)
        }
        return settings
    }

    // MARK: message channel

    private func decodeMessageChannel(_ reader: ConfigReader, _ top: ConfigReader.Mapping, key: String?)
        -> MessageChannelSettings?
    {
        guard
            let channel = reader.mapping(
                reader.node(top, "messageChannel"),
                path: "messageChannel",
                fallbackMark: top.mark,
                keys: ["protocol", "mqtt"]
            )
        else { return nil }
        if !reader.has(top, "messageChannel") {
            reader.missing(top, "messageChannel", "required: messageChannel.mqtt.brokerServer")
            return nil
        }
        if let proto = reader.string(channel, "protocol"), proto.value.lowercased() != "mqtt" {
            reader.invalid(proto, "expected mqtt (the only message channel)")
        }
        guard
            let mqtt = reader.mapping(
                reader.node(channel, "mqtt"),
                path: "messageChannel.mqtt",
                fallbackMark: channel.mark,
                keys: ["brokerServer", "topic", "username", "password", "caFile", "keepAlive"]
            )
        else { return nil }

        var broker: BrokerAddress?
        if let server = reader.string(mqtt, "brokerServer") {
            switch BrokerAddress.parse(server.value) {
            case .success(let parsed): broker = parsed
            case .failure(let error): reader.invalid(server, error.message)
            }
        } else {
            reader.warning(
                mqtt.childPath("brokerServer"),
                at: mqtt.mark,
                "not set — using wovenet's default public broker \(MQTTSettings.wovenetDefaultBroker); "
                    + "messages are sealed, but a broker of your own is more reliable"
            )
            broker = try? BrokerAddress.parse(MQTTSettings.wovenetDefaultBroker).get()
        }

        var topic: String?
        var derived = false
        if let written = reader.string(mqtt, "topic"), !written.value.isEmpty {
            if let problem = MeshTopic.problem(with: written.value) {
                reader.invalid(written, problem)
            } else {
                topic = written.value
            }
        } else if let key {
            topic = MeshTopic.derived(fromKey: key)
            derived = true
        }

        let username = reader.string(mqtt, "username").map(\.value).flatMap { $0.isEmpty ? nil : $0 }
        let password = reader.string(mqtt, "password").map(\.value).flatMap { $0.isEmpty ? nil : $0 }
        if password != nil && username == nil {
            reader.error(mqtt.childPath("username"), at: mqtt.mark, "missing — a password needs a username")
        }
        var caFile: String?
        if let ca = reader.string(mqtt, "caFile"), !ca.value.isEmpty {
            caFile = decodePath(reader, ca)
            if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
                reader.invalid(ca, "no readable file at \(caFile)")
            }
            if let broker, !broker.useTLS {
                reader.warning(ca.path, at: ca.mark, "ignored — the broker is mqtt://, not mqtts://")
            }
        }
        var keepAlive = 10
        if let written = reader.int(mqtt, "keepAlive") {
            if MQTTSettings.keepAliveRange.contains(written.value) {
                keepAlive = written.value
            } else {
                reader.error(
                    written.path,
                    at: written.mark,
                    "\(written.value) — expected \(MQTTSettings.keepAliveRange.lowerBound) to "
                        + "\(MQTTSettings.keepAliveRange.upperBound) seconds"
                )
            }
        }
        guard let broker, let topic else { return nil }
        return MessageChannelSettings(
            mqtt: MQTTSettings(
                broker: broker,
                topic: topic,
                topicIsDerived: derived,
                username: username,
                password: password,
                caFile: caFile,
                keepAlive: keepAlive
            )
        )
    }

    // MARK: tunnel

    struct DecodedTunnel {
        var settings: TunnelSettings
        var listeners: [Located<HostPort>]
    }

    static let socketKeys = [
        "mode", "transportProtocol", "publicAddress", "publicPort", "listenAddress", "listenPort", "httpDetector",
        "stunServer",
    ]

    private func decodeTunnel(_ reader: ConfigReader, _ top: ConfigReader.Mapping, haveStun: Bool) -> DecodedTunnel? {
        guard
            let tunnel = reader.mapping(
                reader.node(top, "tunnel"),
                path: "tunnel",
                fallbackMark: top.mark,
                keys: ["localSockets", "interfaces", "linksPerPath", "connectTimeout"]
            )
        else { return nil }
        var result = DecodedTunnel(settings: TunnelSettings(), listeners: [])
        for item in reader.sequence(tunnel, "localSockets") {
            guard
                let socket = reader.mapping(
                    item.node, path: item.path, fallbackMark: item.node.mark, keys: Self.socketKeys)
            else { continue }
            if let decoded = decodeLocalSocket(reader, socket, haveStun: haveStun) {
                result.settings.localSockets.append(decoded)
                result.listeners.append(
                    Located(
                        value: HostPort(address: decoded.listenAddress, port: decoded.listenPort),
                        mark: socket.mark,
                        path: socket.path
                    )
                )
            }
        }
        for entry in reader.stringList(tunnel, "interfaces") {
            if entry.value.isEmpty || entry.value.utf8.count > 64 || entry.value.contains(where: \.isWhitespace) {
                reader.invalid(entry, "expected an interface name or a local IP address")
            } else {
                result.settings.interfaces.append(entry.value)
            }
        }
        if let links = reader.int(tunnel, "linksPerPath") {
            if (1...TunnelSettings.maxLinksPerPath).contains(links.value) {
                result.settings.linksPerPath = links.value
            } else {
                reader.invalid(
                    Located(value: String(links.value), mark: links.mark, path: links.path),
                    "expected 1 to \(TunnelSettings.maxLinksPerPath)"
                )
            }
        }
        if let timeout = reader.int(tunnel, "connectTimeout") {
            if TunnelSettings.connectTimeoutRange.contains(timeout.value) {
                result.settings.connectTimeout = timeout.value
            } else {
                reader.invalid(
                    Located(value: String(timeout.value), mark: timeout.mark, path: timeout.path),
                    "expected \(TunnelSettings.connectTimeoutRange.lowerBound) to \(TunnelSettings.connectTimeoutRange.upperBound) seconds"
                )
            }
        }
        return result
    }

    /// wovenet's rules: dedicated-address needs an address (public or listen) and one port (both
    /// equal if both are set); port-forwarding needs publicAddress, publicPort and listenPort;
    /// listenAddress defaults to the wildcard of the public address's family.
    private func decodeLocalSocket(_ reader: ConfigReader, _ socket: ConfigReader.Mapping, haveStun: Bool)
        -> LocalSocketConfig?
    {
        let errorsBefore = reader.errorCount
        var mode = LocalSocketConfig.Mode.dedicatedAddress
        if let text = reader.string(socket, "mode", required: true) {
            if let parsed = LocalSocketConfig.Mode(rawValue: text.value.lowercased()) {
                mode = parsed
            } else {
                reader.invalid(text, "expected dedicated-address or port-forwarding")
            }
        }
        var transport = LocalSocketConfig.TransportProtocol.tls
        if let text = reader.string(socket, "transportProtocol") {
            if let parsed = LocalSocketConfig.TransportProtocol(rawValue: text.value.lowercased()) {
                transport = parsed
                if parsed == .quic {
                    reader.warning(
                        text.path,
                        at: text.mark,
                        "quic links do not exist yet — TLS over TCP is used on the same port"
                    )
                }
            } else {
                reader.invalid(text, "expected tls or quic")
            }
        }

        var publicAddress: LocalSocketConfig.PublicAddress?
        let publicText = reader.string(socket, "publicAddress").flatMap { $0.value.isEmpty ? nil : $0 }
        if let publicText {
            switch publicText.value.lowercased() {
            case "autohttpdetect": publicAddress = .autoHttpDetect
            case "autostundetect": publicAddress = .autoStunDetect
            default:
                if let address = IPAddress(publicText.value) {
                    publicAddress = .literal(address)
                } else {
                    reader.invalid(publicText, "expected an IP address, autoHttpDetect or autoStunDetect")
                }
            }
        }
        var listenAddress: IPAddress?
        let listenText = reader.string(socket, "listenAddress").flatMap { $0.value.isEmpty ? nil : $0 }
        if let listenText {
            if let address = IPAddress(listenText.value) {
                listenAddress = address
            } else {
                reader.invalid(listenText, "expected an IP address of this machine (or 0.0.0.0 / ::)")
            }
        }
        var badPorts: Set<String> = []
        let publicPort = decodePort(reader, socket, "publicPort", bad: &badPorts)
        let listenPort = decodePort(reader, socket, "listenPort", bad: &badPorts)

        switch mode {
        case .dedicatedAddress:
            if publicText == nil && listenText == nil {
                reader.missing(socket, "publicAddress", "dedicated-address needs publicAddress or listenAddress")
            } else if publicText == nil, let listenAddress {
                if listenAddress.isUnspecified {
                    reader.error(
                        socket.childPath("publicAddress"),
                        at: socket.mark,
                        "missing — listenAddress \(listenAddress) cannot be announced to peers; set publicAddress"
                    )
                }
                publicAddress = .literal(listenAddress)
            }
            if publicPort == nil && listenPort == nil && badPorts.isEmpty {
                reader.missing(socket, "listenPort", "dedicated-address needs listenPort or publicPort")
            } else if let publicPort, let listenPort, publicPort.value != listenPort.value {
                reader.error(
                    publicPort.path,
                    at: publicPort.mark,
                    "\(publicPort.value) differs from listenPort \(listenPort.value) — with dedicated-address they must be equal"
                )
            }
        case .portForwarding:
            if publicText == nil { reader.missing(socket, "publicAddress", "port-forwarding needs publicAddress") }
            if publicPort == nil && !badPorts.contains("publicPort") {
                reader.missing(socket, "publicPort", "port-forwarding needs publicPort")
            }
            if listenPort == nil && !badPorts.contains("listenPort") {
                reader.missing(socket, "listenPort", "port-forwarding needs listenPort")
            }
        }

        var httpURL: String?
        var httpURLWritten = false
        var stunServer: String?
        let detector = reader.mapping(
            reader.node(socket, "httpDetector"),
            path: socket.childPath("httpDetector"),
            fallbackMark: socket.mark,
            keys: ["url"]
        )
        if let detector, let url = reader.string(detector, "url"), !url.value.isEmpty {
            httpURLWritten = true
            if Self.isHTTPURL(url.value) {
                httpURL = url.value
            } else {
                reader.invalid(url, "expected an http:// or https:// URL")
            }
        }
        if let server = reader.string(socket, "stunServer"), !server.value.isEmpty {
            stunServer = decodeServer(reader, server, defaultPort: 3478)
        }
        switch publicAddress {
        case .autoHttpDetect?:
            if !httpURLWritten {
                reader.missing(socket, "httpDetector.url", "autoHttpDetect needs httpDetector.url")
            }
        case .autoStunDetect?:
            if stunServer == nil && !haveStun && !reader.has(socket, "stunServer") {
                reader.missing(socket, "stunServer", "autoStunDetect needs stunServer (or a top-level stun list)")
            }
        default:
            break
        }

        let resolvedListen: IPAddress
        if let listenAddress {
            resolvedListen = listenAddress
        } else if case .literal(let address)? = publicAddress, address.family == .v6 {
            resolvedListen = IPAddress("::")!
        } else {
            resolvedListen = IPAddress("0.0.0.0")!
        }
        guard reader.errorCount == errorsBefore, let publicAddress else { return nil }
        let port = listenPort?.value ?? publicPort?.value ?? 0
        return LocalSocketConfig(
            mode: mode,
            transportProtocol: transport,
            publicAddress: publicAddress,
            publicPort: publicPort?.value ?? port,
            listenAddress: resolvedListen,
            listenPort: port,
            httpDetectorURL: httpURL,
            stunServer: stunServer
        )
    }

    private func decodePort(
        _ reader: ConfigReader,
        _ mapping: ConfigReader.Mapping,
        _ key: String,
        bad: inout Set<String>
    ) -> Located<Int>? {
        let before = reader.errorCount
        defer { if reader.errorCount != before { bad.insert(key) } }
        guard let text = reader.string(mapping, key) else { return nil }
        switch HostPort.parsePort(text.value.trimmingCharacters(in: .whitespaces)) {
        case .success(let port):
            return Located(value: port, mark: text.mark, path: text.path)
        case .failure:
            if text.value == "0" { return nil }  // wovenet treats 0 as "not set"
            reader.invalid(text, "expected a port from 1 to 65535")
            return nil
        }
    }

    static func isHTTPURL(_ text: String) -> Bool {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
        else { return false }
        return true
    }

    /// `HOST[:PORT]` of a server to contact (a host name is fine here).
    private func decodeServer(_ reader: ConfigReader, _ text: Located<String>, defaultPort: Int) -> String? {
        var value = text.value
        if value.lowercased().hasPrefix("stun:") { value = String(value.dropFirst(5)) }
        let colons = value.filter { $0 == ":" }.count
        let host: String
        var port = defaultPort
        if value.hasPrefix("[") || colons == 1 {
            guard case .success(let (h, p)) = HostPort.split(value), case .success(let parsed) = HostPort.parsePort(p)
            else {
                reader.invalid(text, "expected HOST:PORT of a STUN server")
                return nil
            }
            host = h
            port = parsed
        } else if colons == 0 {
            host = value
        } else if IPAddress(value) != nil {
            host = value
        } else {
            reader.invalid(text, "expected HOST:PORT of a STUN server")
            return nil
        }
        guard IPAddress(host) != nil || BrokerAddress.isHostName(host) else {
            reader.invalid(text, "expected HOST:PORT of a STUN server")
            return nil
        }
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    // MARK: apps

    /// `allowedSites`: site names, each once; an empty list is every member (and said so).
    private func decodeAllowedSites(_ reader: ConfigReader, _ app: ConfigReader.Mapping) -> [String] {
        var sites: [String] = []
        for text in reader.stringList(app, "allowedSites") {
            guard let name = checkName(reader, text) else { continue }
            if sites.contains(name) {
                reader.invalid(text, "listed twice")
            } else {
                sites.append(name)
            }
        }
        if reader.has(app, "allowedSites"), sites.isEmpty, !reader.hasErrors {
            reader.warning(
                app.childPath("allowedSites"), at: reader.node(app, "allowedSites")?.mark,
                "is empty, which means every member of the mesh; list sites, or remove the key")
        }
        return sites
    }

    private func decodeExposedApps(_ reader: ConfigReader, _ top: ConfigReader.Mapping) -> [ExposedAppConfig] {
        var apps: [ExposedAppConfig] = []
        var seen: [String: Int] = [:]
        for item in reader.sequence(top, "localExposedApps") {
            guard
                let app = reader.mapping(
                    item.node,
                    path: item.path,
                    fallbackMark: item.node.mark,
                    keys: ["appName", "mode", "appSocket", "portRange", "addressRange", "allowedSites"]
                )
            else { continue }
            let nameText = reader.string(app, "appName", required: true)
            let allowed = decodeAllowedSites(reader, app)
            let name = nameText.flatMap { checkName(reader, $0) }
            if let name, let nameText {
                if name == SpeedtestPattern.appName {
                    reader.invalid(nameText, "is the name of weft's built-in speed test; choose another")
                } else if let line = seen[name] {
                    reader.invalid(nameText, "duplicate appName (first at line \(line)) — app names must be unique")
                } else {
                    seen[name] = nameText.mark?.line ?? 0
                }
            }
            var isRange = false
            if let mode = reader.string(app, "mode"), !mode.value.isEmpty {
                switch mode.value.lowercased() {
                case "single": isRange = false
                case "range": isRange = true
                default: reader.invalid(mode, "expected single or range")
                }
            }
            if isRange {
                if let socket = reader.string(app, "appSocket") {
                    reader.warning(
                        socket.path, at: socket.mark, "ignored — range apps take their target from the client")
                }
                let ports = decodePortRanges(reader, app)
                let addresses = decodeAddressRanges(reader, app)
                if let name, !ports.isEmpty, !addresses.isEmpty {
                    apps.append(
                        ExposedAppConfig(
                            appName: name, mode: .range(ports: ports, addresses: addresses), allowedSites: allowed))
                }
            } else {
                for key in ["portRange", "addressRange"] where reader.has(app, key) {
                    reader.warning(
                        app.childPath(key), at: reader.node(app, key)?.mark, "ignored — only range apps use it")
                }
                guard let text = reader.string(app, "appSocket", required: true) else { continue }
                switch AppSocket.parse(text.value) {
                case .success(let socket):
                    if case .tcp(let address, _) = socket, address.isUnspecified {
                        reader.invalid(
                            text, "an app cannot be reached at an unspecified address; name the address it listens on")
                    } else if let name {
                        apps.append(ExposedAppConfig(appName: name, mode: .single(socket), allowedSites: allowed))
                    }
                case .failure(let error):
                    reader.invalid(text, error.message)
                }
            }
        }
        return apps
    }

    private func decodePortRanges(_ reader: ConfigReader, _ app: ConfigReader.Mapping) -> [ClosedRange<Int>] {
        let entries = reader.stringList(app, "portRange")
        if entries.isEmpty && !reader.has(app, "portRange") {
            reader.missing(app, "portRange", "range apps need portRange (N or N-M entries)")
        }
        return entries.compactMap { entry in
            let parts = entry.value.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            guard case .success(let low) = HostPort.parsePort(parts[0]) else {
                reader.invalid(entry, "expected a port N or a range N-M, ports 1–65535")
                return nil
            }
            guard parts.count == 2 else { return low...low }
            guard case .success(let high) = HostPort.parsePort(parts[1]) else {
                reader.invalid(entry, "expected a port N or a range N-M, ports 1–65535")
                return nil
            }
            guard low <= high else {
                reader.invalid(entry, "the range ends before it starts")
                return nil
            }
            return low...high
        }
    }

    private func decodeAddressRanges(_ reader: ConfigReader, _ app: ConfigReader.Mapping) -> [IPNetwork] {
        let entries = reader.stringList(app, "addressRange")
        if entries.isEmpty && !reader.has(app, "addressRange") {
            reader.missing(app, "addressRange", "range apps need addressRange (IP addresses or CIDR blocks)")
        }
        return entries.compactMap { entry in
            if let network = IPNetwork(entry.value.trimmingCharacters(in: .whitespaces)) { return network }
            if entry.value.contains("/"), let base = entry.value.split(separator: "/").first,
                IPAddress(String(base)) != nil
            {
                reader.invalid(entry, "expected IP or CIDR; the prefix is out of range or host bits are set after it")
            } else {
                reader.invalid(entry, "expected an IP address or a CIDR block such as 10.0.2.0/24 (no host names)")
            }
            return nil
        }
    }

    struct DecodedRemoteApp {
        var config: RemoteAppConfig
        var mark: Mark?
        var path: String
    }

    private func decodeRemoteApps(_ reader: ConfigReader, _ top: ConfigReader.Mapping, ownSite: String?)
        -> [DecodedRemoteApp]
    {
        var apps: [DecodedRemoteApp] = []
        for item in reader.sequence(top, "remoteApps") {
            guard
                let app = reader.mapping(
                    item.node,
                    path: item.path,
                    fallbackMark: item.node.mark,
                    keys: ["siteName", "appName", "localSocket", "appSocket", "localSocketMode"]
                )
            else { continue }
            let site = decodeName(reader, app, "siteName", required: true)
            if let site, site == ownSite, let text = reader.string(app, "siteName") {
                reader.invalid(text, "is this site's own name — remote apps live at other sites")
            }
            let name = decodeName(reader, app, "appName", required: true)
            var local: AppSocket?
            if let text = reader.string(app, "localSocket", required: true) {
                switch AppSocket.parse(text.value) {
                case .success(let socket): local = socket
                case .failure(let error): reader.invalid(text, error.message)
                }
            }
            var target: AppSocket?
            if let text = reader.string(app, "appSocket"), !text.value.isEmpty {
                switch AppSocket.parse(text.value) {
                case .success(.tcp(let address, let port)): target = .tcp(address, port: port)
                case .success(.unix):
                    reader.invalid(text, "range apps take TCP targets only — expected tcp:IP:PORT or tcp:[IPv6]:PORT")
                case .failure(let error): reader.invalid(text, error.message)
                }
            }
            var mode: Int?
            if let text = reader.string(app, "localSocketMode") {
                if let parsed = Int(
                    text.value.hasPrefix("0o") ? String(text.value.dropFirst(2)) : text.value, radix: 8),
                    (0...0o777).contains(parsed)
                {
                    mode = parsed
                    if case .tcp? = local { reader.invalid(text, "applies to unix: local sockets only") }
                    if parsed & 0o600 != 0o600 {
                        reader.warning(text.path, at: text.mark, "leaves weft's own user without read and write access")
                    }
                } else {
                    reader.invalid(
                        text, "expected an octal file mode such as \"0660\" (quoted, so YAML keeps it as text)")
                }
            }
            if let site, let name, let local {
                apps.append(
                    DecodedRemoteApp(
                        config: RemoteAppConfig(
                            siteName: site, appName: name, localSocket: local, appSocket: target, localSocketMode: mode),
                        mark: app.mark,
                        path: app.path
                    )
                )
            }
        }
        return apps
    }

    // MARK: REST API

    struct DecodedAPI {
        var settings: RestfulAPISettings
        var listener: Located<HostPort>?
    }

    private func decodeRestfulAPI(_ reader: ConfigReader, _ top: ConfigReader.Mapping) -> DecodedAPI? {
        guard
            let api = reader.mapping(
                reader.node(top, "restfulApi"),
                path: "restfulApi",
                fallbackMark: top.mark,
                keys: ["enabled", "listenAddr", "logger", "tls", "auth", "socketDirectory"]
            )
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
        if let logger = reader.mapping(
            reader.node(api, "logger"),
            path: "restfulApi.logger",
            fallbackMark: api.mark,
            keys: ["file"]
        ), let file = reader.string(logger, "file"), !file.value.isEmpty {
            settings.logFile = decodePath(reader, file)
        }
        if let tls = reader.mapping(
            reader.node(api, "tls"),
            path: "restfulApi.tls",
            fallbackMark: api.mark,
            keys: ["enabled", "key", "cert"]
        ) {
            settings.tlsEnabled = reader.bool(tls, "enabled")?.value ?? false
            for (key, store) in [("key", \RestfulAPISettings.tlsKeyFile), ("cert", \RestfulAPISettings.tlsCertFile)] {
                if let text = reader.string(tls, key), !text.value.isEmpty {
                    let path = decodePath(reader, text)
                    settings[keyPath: store] = path
                    if settings.tlsEnabled, let path, !FileManager.default.isReadableFile(atPath: path) {
                        reader.invalid(text, "no readable file at \(path)")
                    }
                } else if settings.tlsEnabled {
                    reader.missing(tls, key, "TLS needs both key and cert files (PEM)")
                }
            }
        }
        if let auth = reader.mapping(
            reader.node(api, "auth"),
            path: "restfulApi.auth",
            fallbackMark: api.mark,
            keys: ["basicAuth"]
        ) {
            var users: Set<String> = []
            for item in reader.sequence(auth, "basicAuth") {
                guard
                    let entry = reader.mapping(
                        item.node, path: item.path, fallbackMark: item.node.mark, keys: ["user", "password"])
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

    // MARK: cross-checks

    /// Two listeners on the same address and port (or one on the wildcard) cannot both start.
    private func checkListenerConflicts(
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

    private func describe(_ hostPort: HostPort) -> String {
        hostPort.address.family == .v6
            ? "[\(hostPort.address)]:\(hostPort.port)" : "\(hostPort.address):\(hostPort.port)"
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
