import NIOCore
import WeftWire

/// Where a link is dialed: a transport and what that transport needs to reach the peer.
///
/// For TLS links `host` is an IP literal; a WebSocket URL may name a host (a reverse proxy's
/// name), which is resolved when dialed and checked then (see `LinkTransportContext.refuse`).
public struct LinkEndpoint: Hashable, Sendable, CustomStringConvertible {
    public typealias Kind = SiteAnnouncement.Endpoint.LinkType

    public var transport: Kind
    /// An IP literal (no brackets); for WebSocket, a DNS name; for Bluetooth, the peer adapter's
    /// address (and `port` its RFCOMM channel); for USB, the gadget's serial number.
    public var host: String
    public var port: Int
    /// WebSocket: the request path, starting with `/`.
    public var path: String
    /// WebSocket: `wss://`, TLS to the server the URL names (a reverse proxy), checked against
    /// the system's CAs plus `tunnel.caFile`. weft's own TLS runs inside either way.
    public var secure: Bool
    /// Relay: the site the relayed link reaches (`host` names the relay site). An announcement
    /// leaves it empty (it is the announcing site); the dialer fills it in (`relayed(to:)`).
    public var target: String = ""

    /// Longest URL an announcement carries (the wire's address limit, which every build reads).
    public static let maxURLLength = SiteAnnouncement.Limits.address

    public init(transport: Kind = .tls, host: String, port: Int, path: String = "/weft", secure: Bool = false) {
        self.transport = transport
        self.host = host
        self.port = port
        self.path = path
        self.secure = secure
    }

    /// A TLS endpoint at an address.
    public static func tls(_ address: SocketAddress) -> LinkEndpoint? {
        guard let host = address.ipAddress, let port = address.port else { return nil }
        return LinkEndpoint(transport: .tls, host: host, port: port)
    }

    /// A QUIC endpoint at an address.
    public static func quic(_ address: SocketAddress) -> LinkEndpoint? {
        guard let host = address.ipAddress, let port = address.port else { return nil }
        return LinkEndpoint(transport: .quic, host: host, port: port)
    }

    /// A link to `target` relayed by the site `relay`.
    public static func relay(via relay: String, to target: String) -> LinkEndpoint {
        var endpoint = LinkEndpoint(transport: .relay, host: relay, port: 0)
        endpoint.target = target
        return endpoint
    }

    /// This endpoint, reaching `site` (relay endpoints; the others are unchanged).
    public func relayed(to site: String) -> LinkEndpoint {
        guard transport == .relay else { return self }
        var endpoint = self
        endpoint.target = site
        return endpoint
    }

    /// The endpoint an announcement names, or nil when it is malformed.
    public init?(announced endpoint: SiteAnnouncement.Endpoint) {
        switch endpoint.linkType {
        case .relay:
            guard endpoint.port == 0, !endpoint.address.isEmpty else { return nil }
            self.init(transport: .relay, host: endpoint.address, port: 0)
        case .tls, .quic, .punch:
            guard endpoint.port > 0 else { return nil }
            self.init(transport: endpoint.linkType, host: endpoint.address, port: Int(endpoint.port))
        case .websocket:
            guard let parsed = Self.webSocket(url: endpoint.address) else { return nil }
            self = parsed
        case .bluetooth:
            guard let address = BluetoothAddress(endpoint.address), RFCOMMSocket.channels.contains(Int(endpoint.port))
            else { return nil }
            self.init(transport: .bluetooth, host: address.description, port: Int(endpoint.port))
        case .usb:
            guard USBLinkDevice.isSerial(endpoint.address), endpoint.port == 1 else { return nil }
            self.init(transport: .usb, host: endpoint.address, port: 1)
        }
    }

    /// The announcement entry for this endpoint.
    public var announced: SiteAnnouncement.Endpoint {
        switch transport {
        case .tls, .quic, .punch, .bluetooth, .usb:
            SiteAnnouncement.Endpoint(linkType: transport, address: host, port: UInt16(port))
        case .websocket: SiteAnnouncement.Endpoint(linkType: .websocket, address: url, port: UInt16(port))
        case .relay: SiteAnnouncement.Endpoint(linkType: .relay, address: host, port: 0)
        }
    }

    /// `ws://HOST:PORT/PATH` or `wss://...` (IPv6 literals in brackets; the scheme's default
    /// port left out).
    public var url: String {
        let bracketed = host.contains(":") ? "[\(host)]" : host
        let portText = port == (secure ? 443 : 80) ? "" : ":\(port)"
        return "\(secure ? "wss" : "ws")://\(bracketed)\(portText)\(path)"
    }

    public var description: String {
        switch transport {
        case .tls, .quic, .punch:
            host.contains(":") ? "\(transport) [\(host)]:\(port)" : "\(transport) \(host):\(port)"
        case .websocket: "websocket \(url)"
        case .bluetooth: "bluetooth \(host) channel \(port)"
        case .usb: "usb gadget \(host)"
        case .relay: target.isEmpty ? "relay via \(host)" : "relay via \(host) to \(target)"
        }
    }

    /// Parses `ws://HOST[:PORT][/PATH]` or `wss://...`: a host name or IP literal, a port (80 or
    /// 443 by default), a path of printable ASCII without spaces, `?` or `#` (default `/`).
    /// Nil for anything else, or longer than `maxURLLength`.
    public static func webSocket(url text: String) -> LinkEndpoint? {
        guard text.utf8.count <= maxURLLength, text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else { return nil }
        let secure: Bool
        var rest: Substring
        if text.lowercased().hasPrefix("wss://") {
            secure = true
            rest = text.dropFirst(6)
        } else if text.lowercased().hasPrefix("ws://") {
            secure = false
            rest = text.dropFirst(5)
        } else {
            return nil
        }
        let authority = rest.prefix { $0 != "/" }
        rest = rest.dropFirst(authority.count)
        let path = rest.isEmpty ? "/" : String(rest)
        guard !path.contains("?"), !path.contains("#") else { return nil }
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                portText = after.dropFirst()
            }
            guard host.contains(":") else { return nil }
        } else {
            guard !authority.contains("@") else { return nil }
            let parts = authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            host = parts[0]
            if parts.count == 2 { portText = parts[1] }
            guard !host.contains(":") else { return nil }
        }
        guard !host.isEmpty, host.utf8.count <= 253,
            host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":" })
        else { return nil }
        var port = secure ? 443 : 80
        if let portText {
            guard let parsed = Int(portText), (1...65_535).contains(parsed) else { return nil }
            port = parsed
        }
        return LinkEndpoint(
            transport: .websocket, host: String(host).lowercased(), port: port, path: path, secure: secure)
    }
}
