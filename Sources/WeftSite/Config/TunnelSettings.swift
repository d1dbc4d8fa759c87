import WeftTransport

/// `tunnel`: the sockets this site listens on for links, and how it dials others.
public struct TunnelSettings: Sendable, Equatable {
    public var localSockets: [LocalSocketConfig]
    /// weft: local interfaces or addresses to dial links from; empty lets the OS choose.
    public var interfaces: [String]
    /// weft: those of `interfaces` marked `role: backup` (a metered uplink): links from them
    /// carry data only while no primary link of the tunnel is up.
    public var backupInterfaces: [String] = []
    /// weft: links per (local interface, remote endpoint) pair.
    public var linksPerPath: Int
    /// weft: seconds a client of a remote app waits for a tunnel with a link before it is closed.
    public var connectTimeout: Int
    /// weft: a PEM bundle of CAs that `wss://` servers (reverse proxies) may also be signed by,
    /// beside the system's.
    public var caFile: String?
    /// weft: dial TLS and WebSocket links through this HTTP (CONNECT) or SOCKS5 proxy.
    public var proxy: LinkProxy?
    /// weft: TCP congestion control for every TCP-based link socket (`bbr`, `cubic`, ...).
    public var congestionControl: String?
    /// weft: this site relays links between other sites of the mesh that cannot reach each
    /// other directly (it sees only their TLS records). Off unless asked for.
    public var relay = false
    /// weft: relayed streams this site carries at most, per pair of sites and in all.
    public var relayLimits = RelayLimits()

    /// `tunnel.relayLimits`.
    public struct RelayLimits: Sendable, Equatable {
        public var perPair = 8
        public var total = 64

        public static let range = 1...4096

        public init(perPair: Int = 8, total: Int = 64) {
            self.perPair = perPair
            self.total = total
        }
    }

    public static let maxLinksPerPath = 16
    public static let connectTimeoutRange = 1...300

    public init(
        localSockets: [LocalSocketConfig] = [], interfaces: [String] = [], linksPerPath: Int = 1,
        connectTimeout: Int = 10, caFile: String? = nil, proxy: LinkProxy? = nil, congestionControl: String? = nil
    ) {
        self.localSockets = localSockets
        self.interfaces = interfaces
        self.linksPerPath = linksPerPath
        self.connectTimeout = connectTimeout
        self.caFile = caFile
        self.proxy = proxy
        self.congestionControl = congestionControl
    }
}

/// One entry of `tunnel.localSockets`, after wovenet's defaulting rules.
public struct LocalSocketConfig: Sendable, Equatable {
    public enum Mode: String, Sendable, Equatable, CaseIterable {
        case dedicatedAddress = "dedicated-address"
        case portForwarding = "port-forwarding"
        /// weft: a QUIC socket behind NAT, with no public address or port forward: the site
        /// learns its mapping with STUN from the socket and links through it by hole punching.
        case natTraversal = "nat-traversal"
        /// weft, USB: this machine is a weft USB device on its device controller and serves the
        /// links a host opens over the cable (`transportProtocol: usb`).
        case usbGadget = "usb-gadget"
        /// weft, USB: this machine dials the weft gadgets peers announce, over its USB host
        /// ports (`transportProtocol: usb`). Nothing listens.
        case usbHost = "usb-host"
    }

    public enum TransportProtocol: String, Sendable, Equatable, CaseIterable {
        case tls
        /// QUIC over UDP on `listenPort` (wovenet's default data channel): ngtcp2, with the site
        /// certificates in QUIC's own TLS 1.3.
        case quic
        /// weft's TLS inside WebSocket messages, served on `path` (HTTP/1.1 upgrade).
        case websocket
        /// weft: RFCOMM on a local Bluetooth adapter (`listenAddress`: its address or `hciN`;
        /// `listenPort`: the RFCOMM channel, 1–30).
        case bluetooth
        /// weft: bulk transfers over a USB cable, with `mode: usb-gadget` or `mode: usb-host`.
        case usb

        /// The link type this socket is announced and served as.
        public var linkType: LinkEndpoint.Kind {
            switch self {
            case .tls: .tls
            case .quic: .quic
            case .websocket: .websocket
            case .bluetooth: .bluetooth
            case .usb: .usb
            }
        }
    }

    /// How peers learn the address to dial.
    public enum PublicAddress: Sendable, Equatable, CustomStringConvertible {
        case literal(IPAddress)
        case autoHttpDetect
        case autoStunDetect
        /// A Bluetooth socket is announced with its adapter's address, known once it is bound; a
        /// USB gadget with its serial number.
        case adapter

        public var description: String {
            switch self {
            case .literal(let address): address.description
            case .autoHttpDetect: "autoHttpDetect"
            case .autoStunDetect: "autoStunDetect"
            case .adapter: "the adapter's address"
            }
        }
    }

    public var mode: Mode
    public var transportProtocol: TransportProtocol
    public var publicAddress: PublicAddress
    public var publicPort: Int
    public var listenAddress: IPAddress
    public var listenPort: Int
    /// `httpDetector.url`, required with `autoHttpDetect`.
    public var httpDetectorURL: String?
    /// weft: `HOST:PORT` of a STUN server, required with `autoStunDetect` unless `stun` lists one.
    public var stunServer: String?
    /// weft, WebSocket: the path links are served on.
    public var path: String
    /// weft: `role: backup`: links accepted here carry data only while no primary link is up.
    public var backup = false
    /// weft, WebSocket: the URL peers dial instead, when a reverse proxy forwards it here
    /// (`wss://example.com/weft`).
    public var publicURL: LinkEndpoint?
    /// weft, Bluetooth: the adapter that `listenAddress` names (`listenAddress` itself is then
    /// unused, the wildcard).
    public var bluetoothAdapter: BluetoothAdapter?
    /// weft, USB gadget: the device controller (UDC) that `listenAddress` names; nil takes the
    /// first one.
    public var usbController: String?

    /// Whether this socket listens for links (a USB host socket only dials).
    public var listens: Bool { mode != .usbHost }

    public static let defaultPath = "/weft"
    /// RFCOMM server channels: what `listenPort` of a Bluetooth socket may be.
    public static let rfcommChannels = BluetoothLinkTransport.channels
    /// Longest `path`: a URL with any address and port must still fit an announcement.
    public static let maxPathLength = 24

    public init(
        mode: Mode,
        transportProtocol: TransportProtocol = .tls,
        publicAddress: PublicAddress,
        publicPort: Int,
        listenAddress: IPAddress,
        listenPort: Int,
        httpDetectorURL: String? = nil,
        stunServer: String? = nil,
        path: String = LocalSocketConfig.defaultPath,
        publicURL: LinkEndpoint? = nil
    ) {
        self.path = path
        self.publicURL = publicURL
        self.mode = mode
        self.transportProtocol = transportProtocol
        self.publicAddress = publicAddress
        self.publicPort = publicPort
        self.listenAddress = listenAddress
        self.listenPort = listenPort
        self.httpDetectorURL = httpDetectorURL
        self.stunServer = stunServer
    }
}
