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
                        "protocols", "udpIdleTimeout",
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
            let idle = decodeUDPIdleTimeout(reader, app)
            if isRange {
                if let socket = reader.string(app, "appSocket") {
                    reader.warning(
                        socket.path, at: socket.mark, "ignored — range apps take their target from the client")
                }
                let ports = decodePortRanges(reader, app)
                let addresses = decodeAddressRanges(reader, app)
                let protocols = decodeProtocols(reader, app)
                if let idle, !protocols.contains(.udp) {
                    reader.warning(idle.path, at: idle.mark, "ignored — the app takes no UDP targets (protocols)")
                }
                if proxyProtocol != nil, protocols == [.udp], let text = reader.string(app, "proxyProtocol") {
                    reader.invalid(text, "applies to TCP only; this app takes UDP targets only")
                }
                if let name, !ports.isEmpty, !addresses.isEmpty, !protocols.isEmpty {
                    apps.append(
                        ExposedAppConfig(
                            appName: name, mode: .range(ports: ports, addresses: addresses), allowedSites: allowed,
                            proxyProtocol: proxyProtocol, protocols: protocols,
                            udpIdleTimeout: (protocols.contains(.udp) ? idle?.value : nil)
                                ?? ExposedAppConfig.defaultUDPIdleTimeout))
                }
            } else {
                if reader.has(app, "protocols") {
                    reader.warning(
                        app.childPath("protocols"), at: reader.node(app, "protocols")?.mark,
                        "ignored — a single app's appSocket says it (tcp: or udp:)")
                }
                for key in ["portRange", "addressRange"] where reader.has(app, key) {
                    reader.warning(
                        app.childPath(key), at: reader.node(app, key)?.mark, "ignored — only range apps use it")
                }
                guard let text = reader.string(app, "appSocket", required: true) else { continue }
                switch AppSocket.parse(text.value) {
                case .success(let socket):
                    if socket.unspecifiedAddress {
                        reader.invalid(
                            text, "an app cannot be reached at an unspecified address; name the address it listens on")
                    } else if socket.isDatagram, proxyProtocol != nil, let text = reader.string(app, "proxyProtocol") {
                        reader.invalid(text, "applies to TCP and Unix apps only, not to a udp: app")
                    } else if let name {
                        if let idle, !socket.isDatagram {
                            reader.warning(idle.path, at: idle.mark, "ignored — only udp: apps use it")
                        }
                        apps.append(
                            ExposedAppConfig(
                                appName: name, mode: .single(socket), allowedSites: allowed,
                                proxyProtocol: proxyProtocol,
                                udpIdleTimeout: (socket.isDatagram ? idle?.value : nil)
                                    ?? ExposedAppConfig.defaultUDPIdleTimeout))
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
                    item,
                    keys: [
                        "siteName", "appName", "localSocket", "appSocket", "localSocketMode", "udpIdleTimeout",
                        "udpMaxFlows",
                    ])
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
                case .success(.unix):
                    reader.invalid(text, "range apps take TCP or UDP targets — expected tcp:IP:PORT or udp:IP:PORT")
                case .success(let socket):
                    if let local, local.isDatagram != socket.isDatagram {
                        reader.invalid(
                            text,
                            local.isDatagram
                                ? "a udp: local socket needs a udp: target" : "a udp: target needs a udp: local socket")
                    } else {
                        target = socket
                    }
                case .failure(let error): reader.invalid(text, error.message)
                }
            }
            let idle = decodeUDPIdleTimeout(reader, app)
            var maxFlows = RemoteAppConfig.defaultUDPMaxFlows
            if let text = reader.int(app, "udpMaxFlows") {
                if RemoteAppConfig.udpMaxFlowsRange.contains(text.value) {
                    maxFlows = text.value
                } else {
                    reader.error(
                        text.path, at: text.mark,
                        "\(text.value) — expected \(RemoteAppConfig.udpMaxFlowsRange.lowerBound) to "
                            + "\(RemoteAppConfig.udpMaxFlowsRange.upperBound) client addresses at once")
                }
            }
            var idleTimeout = idle?.value ?? ExposedAppConfig.defaultUDPIdleTimeout
            if let local, !local.isDatagram {
                for key in ["udpIdleTimeout", "udpMaxFlows"] where reader.has(app, key) {
                    reader.warning(
                        app.childPath(key), at: reader.node(app, key)?.mark, "ignored — only udp: local sockets use it")
                }
                // Kept as the defaults, so the API's document of the entry carries nothing ignored.
                idleTimeout = ExposedAppConfig.defaultUDPIdleTimeout
                maxFlows = RemoteAppConfig.defaultUDPMaxFlows
            }
            var mode: Int?
            if let text = reader.string(app, "localSocketMode") {
                if let parsed = Int(
                    text.value.hasPrefix("0o") ? String(text.value.dropFirst(2)) : text.value, radix: 8),
                    (0...0o777).contains(parsed)
                {
                    mode = parsed
                    if let local, !local.isUnix { reader.invalid(text, "applies to unix: local sockets only") }
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
                            siteName: site, appName: name, localSocket: local, appSocket: target, localSocketMode: mode,
                            udpIdleTimeout: idleTimeout, udpMaxFlows: maxFlows),
                        mark: app.mark,
                        path: app.path
                    )
                )
            }
        }
        return apps
    }
}

extension SiteConfigurationDecoder {
    /// `udpIdleTimeout`: seconds a UDP flow lives without a datagram either way.
    func decodeUDPIdleTimeout(_ reader: ConfigReader, _ app: ConfigReader.Mapping) -> Located<Duration>? {
        guard let text = reader.int(app, "udpIdleTimeout") else { return nil }
        let range = ExposedAppConfig.udpIdleTimeoutRange
        guard range.contains(text.value) else {
            reader.error(
                text.path, at: text.mark,
                "\(text.value) — expected \(range.lowerBound) to \(range.upperBound) seconds")
            return nil
        }
        return Located(value: .seconds(text.value), mark: text.mark, path: text.path)
    }

    /// `protocols` of a range app: `tcp`, `udp` or both; TCP only when absent.
    func decodeProtocols(_ reader: ConfigReader, _ app: ConfigReader.Mapping) -> Set<ExposedAppConfig.TargetProtocol> {
        guard reader.has(app, "protocols") else { return [.tcp] }
        var protocols: Set<ExposedAppConfig.TargetProtocol> = []
        for text in reader.stringList(app, "protocols") {
            guard let value = ExposedAppConfig.TargetProtocol(rawValue: text.value.lowercased()) else {
                reader.invalid(text, "expected tcp or udp")
                continue
            }
            if !protocols.insert(value).inserted {
                reader.warning(text.path, at: text.mark, "listed twice")
            }
        }
        if protocols.isEmpty && !reader.hasErrors {
            reader.error(
                app.childPath("protocols"), at: reader.node(app, "protocols")?.mark, "is empty — list tcp, udp or both")
        }
        return protocols
    }
}
