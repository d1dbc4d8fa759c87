/// One entry of `localExposedApps`: a local app other sites may reach, by name.
public struct ExposedAppConfig: Sendable, Equatable {
    public enum Mode: Sendable, Equatable {
        /// One fixed socket.
        case single(AppSocket)
        /// Any TCP target the client names, if inside both ranges.
        case range(ports: [ClosedRange<Int>], addresses: [IPNetwork])
    }

    /// HAProxy's PROXY protocol header, sent to the app before a stream's bytes.
    public enum ProxyProtocol: String, Sendable, Equatable, CaseIterable {
        /// The text form (`PROXY TCP4 …\r\n`).
        case v1
        /// The binary form.
        case v2
    }

    /// What a range app's targets may be (`protocols`).
    public enum TargetProtocol: String, Sendable, Hashable, CaseIterable {
        case tcp
        case udp
    }

    /// How long a UDP flow lives without a datagram either way, unless the config says.
    public static let defaultUDPIdleTimeout: Duration = .seconds(60)
    public static let udpIdleTimeoutRange = 1...86_400

    public var appName: String
    public var mode: Mode
    /// *weft*: the sites that may use the app; empty means every member of the mesh.
    public var allowedSites: [String]
    /// *weft*: tell the app each client's real address with a PROXY header (the app must
    /// expect one: nginx's `listen … proxy_protocol`, HAProxy's `accept-proxy`).
    public var proxyProtocol: ProxyProtocol?
    /// *weft*, range apps: the target protocols clients may name (TCP only unless listed).
    public var protocols: Set<TargetProtocol>
    /// *weft*: how long the socket of a UDP flow to the app lives without a datagram.
    public var udpIdleTimeout: Duration

    public init(
        appName: String, mode: Mode, allowedSites: [String] = [], proxyProtocol: ProxyProtocol? = nil,
        protocols: Set<TargetProtocol> = [.tcp], udpIdleTimeout: Duration = ExposedAppConfig.defaultUDPIdleTimeout
    ) {
        self.appName = appName
        self.mode = mode
        self.allowedSites = allowedSites
        self.proxyProtocol = proxyProtocol
        self.protocols = protocols
        self.udpIdleTimeout = udpIdleTimeout
    }

    /// Whether `site` may open streams to the app.
    public func isAllowed(for site: String) -> Bool {
        allowedSites.isEmpty || allowedSites.contains(site)
    }

    /// Whether a range app may connect to `address:port`. Always false for single apps.
    public func allows(_ address: IPAddress, port: Int) -> Bool {
        guard case .range(let ports, let addresses) = mode else { return false }
        return ports.contains { $0.contains(port) } && addresses.contains { $0.contains(address) }
    }
}
