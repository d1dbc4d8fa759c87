import Foundation
import WeftDiscovery
import WeftTransport
import WeftWire
import Yams

/// `tunnel` and `stun`: link sockets, their public-address detection, interfaces and limits.
extension SiteConfigurationDecoder {
    struct DecodedTunnel {
        var settings: TunnelSettings
        /// TCP listeners (tls and websocket sockets).
        var listeners: [Located<HostPort>]
        /// UDP listeners (quic sockets): they share port numbers with TCP ones freely.
        var udpListeners: [Located<HostPort>] = []
        /// RFCOMM listeners (bluetooth sockets: an adapter and a channel each) and USB sockets
        /// (one of each mode).
        var bluetoothListeners: [Located<String>] = []
    }

    static let socketKeys = [
        "mode", "transportProtocol", "publicAddress", "publicPort", "listenAddress", "listenPort", "httpDetector",
        "stunServer", "path", "publicUrl", "role",
    ]

    func decodeTunnel(_ reader: ConfigReader, _ top: ConfigReader.Mapping, haveStun: Bool) -> DecodedTunnel? {
        guard
            let tunnel = reader.section(
                top, "tunnel",
                keys: [
                    "localSockets", "interfaces", "linksPerPath", "connectTimeout", "caFile", "proxy",
                    "congestionControl", "relay", "relayLimits",
                ])
        else { return nil }
        var result = DecodedTunnel(settings: TunnelSettings(), listeners: [])
        for item in reader.sequence(tunnel, "localSockets") {
            guard
                let socket = reader.entry(item, keys: Self.socketKeys)
            else { continue }
            let transportText: String? =
                if case .scalar(let scalar)? = reader.node(socket, "transportProtocol") {
                    scalar.string.lowercased()
                } else {
                    nil
                }
            if transportText == LocalSocketConfig.TransportProtocol.usb.rawValue {
                guard let decoded = decodeUSBSocket(reader, socket) else { continue }
                let kind = decoded.mode == .usbGadget ? "usb-gadget" : "usb-host"
                if let earlier = result.bluetoothListeners.first(where: { $0.value == kind }) {
                    reader.error(
                        socket.childPath("mode"), at: reader.node(socket, "mode")?.mark ?? socket.mark,
                        "a site has one \(kind) socket; \(earlier.path) is one already")
                    continue
                }
                result.bluetoothListeners.append(Located(value: kind, mark: socket.mark, path: socket.path))
                result.settings.localSockets.append(decoded)
            } else if transportText == LocalSocketConfig.TransportProtocol.bluetooth.rawValue {
                guard let decoded = decodeBluetoothSocket(reader, socket) else { continue }
                let listener = "\(decoded.bluetoothAdapter.map { "\($0)" } ?? "?") channel \(decoded.listenPort)"
                if let earlier = result.bluetoothListeners.first(where: { $0.value == listener }) {
                    reader.error(
                        socket.childPath("listenPort"), at: reader.node(socket, "listenPort")?.mark ?? socket.mark,
                        "\(listener) is already used by \(earlier.path)")
                    continue
                }
                result.bluetoothListeners.append(Located(value: listener, mark: socket.mark, path: socket.path))
                result.settings.localSockets.append(decoded)
            } else if let decoded = decodeLocalSocket(reader, socket, haveStun: haveStun) {
                result.settings.localSockets.append(decoded)
                let listener = Located(
                    value: HostPort(address: decoded.listenAddress, port: decoded.listenPort),
                    mark: socket.mark,
                    path: socket.path
                )
                if decoded.transportProtocol == .quic {
                    result.udpListeners.append(listener)
                } else {
                    result.listeners.append(listener)
                }
            }
        }
        for (entry, backup) in decodeInterfaces(reader, tunnel) {
            if entry.value.isEmpty || entry.value.utf8.count > 64 || entry.value.contains(where: \.isWhitespace) {
                reader.invalid(entry, "expected an interface name or a local IP address")
            } else {
                result.settings.interfaces.append(entry.value)
                if backup { result.settings.backupInterfaces.append(entry.value) }
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
        if let ca = reader.string(tunnel, "caFile"), !ca.value.isEmpty {
            result.settings.caFile = decodePath(reader, ca)
            if let caFile = result.settings.caFile { reader.expectReadable(ca, path: caFile) }
        }
        if let proxy = reader.string(tunnel, "proxy"), !proxy.value.isEmpty {
            switch LinkProxy.parse(proxy.value) {
            case .success(let parsed): result.settings.proxy = parsed
            case .failure(let error):
                // Never print a password, even a mistyped one.
                var shown = proxy
                if let at = shown.value.lastIndex(of: "@"), let scheme = shown.value.range(of: "://") {
                    shown.value = String(shown.value[..<scheme.upperBound]) + "***" + String(shown.value[at...])
                }
                reader.invalid(shown, error.description)
            }
        }
        if let congestion = reader.string(tunnel, "congestionControl"), !congestion.value.isEmpty {
            let name = congestion.value
            if name.utf8.count > LinkSocketOptions.maxCongestionControlName
                || !name.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5f })
            {
                reader.invalid(congestion, "expected a congestion control name such as bbr or cubic")
            } else {
                result.settings.congestionControl = name
                if let available = Self.availableCongestionControls(), !available.contains(name) {
                    reader.warning(
                        congestion.path, at: congestion.mark,
                        "\(name) is not in this kernel's tcp_available_congestion_control (\(available.sorted().joined(separator: " "))); links keep the default unless its module loads"
                    )
                }
            }
        }
        if let relay = reader.bool(tunnel, "relay") { result.settings.relay = relay.value }
        if let limits = reader.section(tunnel, "relayLimits", keys: ["perPair", "total"]) {
            let range = TunnelSettings.RelayLimits.range
            for key in ["perPair", "total"] {
                guard let value = reader.int(limits, key) else { continue }
                guard range.contains(value.value) else {
                    reader.invalid(
                        Located(value: String(value.value), mark: value.mark, path: value.path),
                        "expected \(range.lowerBound) to \(range.upperBound) relayed streams")
                    continue
                }
                if key == "perPair" {
                    result.settings.relayLimits.perPair = value.value
                } else {
                    result.settings.relayLimits.total = value.value
                }
            }
            if result.settings.relayLimits.perPair > result.settings.relayLimits.total,
                let total = reader.int(limits, "total")
            {
                reader.invalid(
                    Located(value: String(total.value), mark: total.mark, path: total.path),
                    "total is below perPair (\(result.settings.relayLimits.perPair))")
            }
        }
        return result
    }

    /// `tunnel.interfaces`: names or addresses, each either plain (a primary path) or a mapping
    /// `{interface: NAME, role: primary|backup}`.
    func decodeInterfaces(_ reader: ConfigReader, _ tunnel: ConfigReader.Mapping) -> [(Located<String>, Bool)] {
        guard let node = reader.node(tunnel, "interfaces") else { return [] }
        if case .scalar = node { return reader.stringList(tunnel, "interfaces").map { ($0, false) } }
        var result: [(Located<String>, Bool)] = []
        for item in reader.sequence(tunnel, "interfaces") {
            if case .mapping = item.node {
                guard let entry = reader.entry(item, keys: ["interface", "role"]),
                    let name = reader.string(entry, "interface", required: true)
                else { continue }
                result.append((name, decodeRole(reader, entry) ?? false))
            } else if case .scalar(let scalar) = item.node {
                result.append((Located(value: scalar.string, mark: item.node.mark, path: item.path), false))
            } else {
                reader.error(
                    item.path, at: item.node.mark,
                    "expected an interface name, a local IP address or {interface: NAME, role: backup}")
            }
        }
        return result
    }

    /// `role`: `primary` (false) or `backup` (true); nil when absent or invalid (with an error).
    func decodeRole(_ reader: ConfigReader, _ mapping: ConfigReader.Mapping) -> Bool? {
        guard let role = reader.string(mapping, "role") else { return nil }
        switch role.value.lowercased() {
        case "primary": return false
        case "backup": return true
        default:
            reader.invalid(role, "expected primary or backup")
            return nil
        }
    }

    /// What `/proc/sys/net/ipv4/tcp_available_congestion_control` lists, or nil off Linux.
    static func availableCongestionControls() -> Set<String>? {
        guard
            let text = try? String(
                contentsOfFile: "/proc/sys/net/ipv4/tcp_available_congestion_control", encoding: .utf8)
        else { return nil }
        return Set(text.split(whereSeparator: \.isWhitespace).map(String.init))
    }

    /// wovenet's rules: dedicated-address needs an address (public or listen) and one port (both
    /// equal if both are set); port-forwarding needs publicAddress, publicPort and listenPort;
    /// listenAddress defaults to the wildcard of the public address's family.
    func decodeLocalSocket(_ reader: ConfigReader, _ socket: ConfigReader.Mapping, haveStun: Bool)
        -> LocalSocketConfig?
    {
        let errorsBefore = reader.errorCount
        var mode = LocalSocketConfig.Mode.dedicatedAddress
        if let text = reader.string(socket, "mode", required: true) {
            if let parsed = LocalSocketConfig.Mode(rawValue: text.value.lowercased()),
                parsed != .usbGadget && parsed != .usbHost
            {
                mode = parsed
            } else if LocalSocketConfig.Mode(rawValue: text.value.lowercased()) != nil {
                reader.invalid(text, "\(text.value) needs transportProtocol: usb")
            } else {
                reader.invalid(
                    text, "expected dedicated-address, port-forwarding, nat-traversal, usb-gadget or usb-host")
            }
        }
        var transport = LocalSocketConfig.TransportProtocol.tls
        if let text = reader.string(socket, "transportProtocol") {
            if let parsed = LocalSocketConfig.TransportProtocol(rawValue: text.value.lowercased()) {
                transport = parsed
            } else {
                reader.invalid(text, "expected tls, quic, websocket, bluetooth or usb")
            }
        }
        let backup = decodeRole(reader, socket) ?? false
        var path = LocalSocketConfig.defaultPath
        var publicURL: LinkEndpoint?
        if let text = reader.string(socket, "path"), !text.value.isEmpty {
            if transport != .websocket {
                reader.warning(text.path, at: text.mark, "ignored — path is for transportProtocol: websocket")
            } else if text.value.hasPrefix("/"), text.value.utf8.count <= LocalSocketConfig.maxPathLength,
                text.value.utf8.allSatisfy({
                    $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#")
                })
            {
                path = text.value
            } else {
                reader.invalid(
                    text,
                    "expected a path starting with / (at most \(LocalSocketConfig.maxPathLength) characters, no spaces, ? or #)"
                )
            }
        }
        let urlText = reader.string(socket, "publicUrl").flatMap { $0.value.isEmpty ? nil : $0 }
        if let urlText {
            if transport != .websocket {
                reader.invalid(urlText, "publicUrl needs transportProtocol: websocket")
            } else if let parsed = LinkEndpoint.webSocket(url: urlText.value) {
                publicURL = parsed
            } else {
                reader.invalid(
                    urlText,
                    "expected ws://HOST[:PORT]/PATH or wss://HOST[:PORT]/PATH, at most \(LinkEndpoint.maxURLLength) characters"
                )
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
                if urlText == nil {
                    reader.missing(socket, "publicAddress", "dedicated-address needs publicAddress or listenAddress")
                }
            } else if publicText == nil, let listenAddress {
                if listenAddress.isUnspecified && urlText == nil {
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
            if publicText == nil && urlText == nil {
                reader.missing(socket, "publicAddress", "port-forwarding needs publicAddress")
            }
            if publicPort == nil && urlText == nil && !badPorts.contains("publicPort") {
                reader.missing(socket, "publicPort", "port-forwarding needs publicPort")
            }
            if listenPort == nil && !badPorts.contains("listenPort") {
                reader.missing(socket, "listenPort", "port-forwarding needs listenPort")
            }
        case .natTraversal:
            if transport != .quic {
                reader.error(
                    socket.childPath("transportProtocol"), at: socket.mark,
                    "nat-traversal needs transportProtocol: quic (hole punching is for UDP)")
            }
            if listenPort == nil && !badPorts.contains("listenPort") {
                reader.missing(socket, "listenPort", "nat-traversal needs listenPort")
            }
            for key in ["publicAddress", "publicPort"] where reader.has(socket, key) {
                reader.warning(
                    socket.childPath(key), at: socket.mark,
                    "ignored — nat-traversal learns its public mapping with STUN")
            }
            // The mapping comes from STUN, through the socket itself (`HolePuncher`).
            publicAddress = .autoStunDetect
        case .usbGadget, .usbHost:
            break  // refused above: they need transportProtocol: usb (`decodeUSBSocket`)
        }

        var httpURL: String?
        var httpURLWritten = false
        var stunServer: String?
        let detector = reader.section(socket, "httpDetector", keys: ["url"])
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
                reader.missing(
                    socket, "stunServer",
                    mode == .natTraversal
                        ? "nat-traversal needs stunServer (or a top-level stun list)"
                        : "autoStunDetect needs stunServer (or a top-level stun list)")
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
        if publicAddress == nil, urlText != nil { publicAddress = .literal(resolvedListen) }
        guard reader.errorCount == errorsBefore, let publicAddress else { return nil }
        let port = listenPort?.value ?? publicPort?.value ?? 0
        if transport == .websocket, publicURL == nil, case .literal(let address) = publicAddress {
            let url = LinkEndpoint(
                transport: .websocket, host: address.description, port: publicPort?.value ?? port, path: path)
            if url.url.utf8.count > LinkEndpoint.maxURLLength {
                reader.error(
                    socket.childPath("path"), at: socket.mark,
                    "the announced URL \(url.url) is longer than \(LinkEndpoint.maxURLLength) characters; shorten path")
                return nil
            }
        }
        var config = LocalSocketConfig(
            mode: mode,
            transportProtocol: transport,
            publicAddress: publicAddress,
            publicPort: mode == .natTraversal ? port : publicPort?.value ?? port,
            listenAddress: resolvedListen,
            listenPort: port,
            httpDetectorURL: httpURL,
            stunServer: stunServer,
            path: path,
            publicURL: publicURL
        )
        config.backup = backup
        return config
    }

    /// `transportProtocol: bluetooth`: RFCOMM on one adapter, named by `listenAddress` (its
    /// address or `hciN`), on the channel `listenPort` (1–30). Peers dial the adapter's own
    /// address, so the keys that set or detect a public address have no meaning here: an error
    /// each, not a silent guess.
    func decodeBluetoothSocket(_ reader: ConfigReader, _ socket: ConfigReader.Mapping) -> LocalSocketConfig? {
        let errorsBefore = reader.errorCount
        if let text = reader.string(socket, "mode", required: true),
            LocalSocketConfig.Mode(rawValue: text.value.lowercased()) != .dedicatedAddress
        {
            reader.invalid(text, "expected dedicated-address (peers dial a Bluetooth adapter's own address)")
        }
        for key in ["publicAddress", "publicPort", "publicUrl", "httpDetector", "stunServer", "path"] {
            guard let node = reader.node(socket, key) else { continue }
            reader.error(
                socket.childPath(key), at: node.mark ?? socket.mark,
                "not used with transportProtocol: bluetooth (peers dial the adapter's address and channel)")
        }
        let backup = decodeRole(reader, socket) ?? false
        var adapter: BluetoothAdapter?
        if let text = reader.string(socket, "listenAddress", required: true) {
            adapter = BluetoothAdapter(text.value)
            if adapter == nil {
                reader.invalid(text, "expected a Bluetooth adapter's address (00:1A:7D:DA:71:13) or name (hci0)")
            }
        }
        var channel: Int?
        if let text = reader.string(socket, "listenPort", required: true) {
            if let value = Int(text.value.trimmingCharacters(in: .whitespaces)),
                LocalSocketConfig.rfcommChannels.contains(value)
            {
                channel = value
            } else {
                reader.invalid(
                    text,
                    "expected an RFCOMM channel from \(LocalSocketConfig.rfcommChannels.lowerBound) to \(LocalSocketConfig.rfcommChannels.upperBound)"
                )
            }
        }
        guard reader.errorCount == errorsBefore, let adapter, let channel else { return nil }
        var config = LocalSocketConfig(
            mode: .dedicatedAddress, transportProtocol: .bluetooth, publicAddress: .adapter, publicPort: channel,
            listenAddress: IPAddress("0.0.0.0")!, listenPort: channel)
        config.bluetoothAdapter = adapter
        config.backup = backup
        return config
    }

    /// `transportProtocol: usb`: `mode: usb-gadget` (this machine is the USB device; an
    /// optional `listenAddress` names the device controller, else the first is taken) or
    /// `mode: usb-host` (this machine dials the gadgets peers announce). Peers find a gadget by
    /// the serial number it presents, so no address or port applies.
    func decodeUSBSocket(_ reader: ConfigReader, _ socket: ConfigReader.Mapping) -> LocalSocketConfig? {
        let errorsBefore = reader.errorCount
        var mode: LocalSocketConfig.Mode?
        if let text = reader.string(socket, "mode", required: true) {
            mode = LocalSocketConfig.Mode(rawValue: text.value.lowercased())
            if mode != .usbGadget && mode != .usbHost {
                reader.invalid(text, "expected usb-gadget or usb-host with transportProtocol: usb")
            }
        }
        for key in ["publicAddress", "publicPort", "listenPort", "publicUrl", "httpDetector", "stunServer", "path"] {
            guard let node = reader.node(socket, key) else { continue }
            reader.error(
                socket.childPath(key), at: node.mark ?? socket.mark,
                "not used with transportProtocol: usb (peers find a gadget by its serial number)")
        }
        let backup = decodeRole(reader, socket) ?? false
        if backup, mode == .usbHost, let role = reader.node(socket, "role") {
            reader.error(
                socket.childPath("role"), at: role.mark ?? socket.mark,
                "set role on the usb-gadget side: the gadget's socket says what its links are")
        }
        var controller: String?
        if let text = reader.string(socket, "listenAddress"), !text.value.isEmpty {
            if mode == .usbHost {
                reader.error(
                    text.path, at: text.mark, "not used with mode: usb-host (every USB host port is looked at)")
            } else if text.value.utf8.count <= 64,
                text.value.utf8.allSatisfy({
                    ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a)
                        || [0x2d, 0x2e, 0x5f, 0x3a].contains($0)
                }), text.value != ".", text.value != ".."
            {
                controller = text.value
            } else {
                reader.invalid(text, "expected a USB device controller's name from /sys/class/udc (dummy_udc.0)")
            }
        }
        guard reader.errorCount == errorsBefore, let mode else { return nil }
        var config = LocalSocketConfig(
            mode: mode, transportProtocol: .usb, publicAddress: .adapter, publicPort: 1,
            listenAddress: IPAddress("0.0.0.0")!, listenPort: 0)
        config.usbController = controller
        config.backup = backup
        return config
    }

    func decodePort(
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
    func decodeServer(_ reader: ConfigReader, _ text: Located<String>, defaultPort: Int) -> String? {
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
        return String(host: host, port: port)
    }
}
