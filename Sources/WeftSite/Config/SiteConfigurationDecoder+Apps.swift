import Foundation
import WeftDiscovery
import WeftWire
import Yams

/// `localExposedApps` and `remoteApps`.
extension SiteConfigurationDecoder {
    /// `allowedSites`: site names, each once; an empty list is every member (and said so).
    func decodeAllowedSites(_ reader: ConfigReader, _ app: ConfigReader.Mapping) -> [String] {
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

    func decodeExposedApps(_ reader: ConfigReader, _ top: ConfigReader.Mapping) -> [ExposedAppConfig] {
        var apps: [ExposedAppConfig] = []
        var seen: [String: Int] = [:]
        for item in reader.sequence(top, "localExposedApps") {
            guard
                let app = reader.entry(
                    item,
                    keys: [
                        "appName", "mode", "appSocket", "portRange", "addressRange", "allowedSites", "proxyProtocol",
                    ])
            else { continue }
            let nameText = reader.string(app, "appName", required: true)
            let allowed = decodeAllowedSites(reader, app)
            var proxyProtocol: ExposedAppConfig.ProxyProtocol?
            if let text = reader.string(app, "proxyProtocol"), !text.value.isEmpty {
                proxyProtocol = ExposedAppConfig.ProxyProtocol(rawValue: text.value.lowercased())
                if proxyProtocol == nil {
                    reader.invalid(text, "expected v1 or v2 (HAProxy's PROXY protocol), or leave it out")
                }
            }
            let name = nameText.flatMap { checkName(reader, $0) }
            if let name, let nameText {
                if name == SpeedtestPattern.appName {
                    reader.invalid(nameText, "is the name of weft's built-in speed test; choose another")
                } else if name.hasPrefix(RelayProtocol.reservedPrefix) {
                    reader.invalid(
                        nameText, "names starting with \(RelayProtocol.reservedPrefix) are weft's own; choose another")
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
                            appName: name, mode: .range(ports: ports, addresses: addresses), allowedSites: allowed,
                            proxyProtocol: proxyProtocol))
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
                        apps.append(
                            ExposedAppConfig(
                                appName: name, mode: .single(socket), allowedSites: allowed,
                                proxyProtocol: proxyProtocol))
                    }
                case .failure(let error):
                    reader.invalid(text, error.message)
                }
            }
        }
        return apps
    }

    func decodePortRanges(_ reader: ConfigReader, _ app: ConfigReader.Mapping) -> [ClosedRange<Int>] {
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

    func decodeAddressRanges(_ reader: ConfigReader, _ app: ConfigReader.Mapping) -> [IPNetwork] {
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

    func decodeRemoteApps(_ reader: ConfigReader, _ top: ConfigReader.Mapping, ownSite: String?)
        -> [DecodedRemoteApp]
    {
        var apps: [DecodedRemoteApp] = []
        for item in reader.sequence(top, "remoteApps") {
            guard
                let app = reader.entry(
                    item, keys: ["siteName", "appName", "localSocket", "appSocket", "localSocketMode"])
            else { continue }
            let site = decodeName(reader, app, "siteName", required: true)
            if let site, site == ownSite, let text = reader.string(app, "siteName") {
                reader.invalid(text, "is this site's own name — remote apps live at other sites")
            }
            let name = decodeName(reader, app, "appName", required: true)
            if let name, name == RelayProtocol.request || name == RelayProtocol.delivery,
                let text = reader.string(app, "appName")
            {
                reader.invalid(text, "is weft's own relay stream, not an app")
            }
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
}
