/// A `localExposedApps` entry as JSON: the API's form and the state file's, with the keys of
/// `config.yaml` (and of wovenet's API), so what is read back parses as a request body.
public struct ExposedAppDocument: Codable, Sendable, Equatable {
    public var appName: String
    public var mode: String
    public var appSocket: String?
    public var portRange: [String]
    public var addressRange: [String]
    public var allowedSites: [String]
    /// `v1`, `v2` or null.
    public var proxyProtocol: String?
    /// Range apps: `tcp`, `udp` or both; absent means TCP only.
    public var protocols: [String]?
    /// UDP apps: seconds; absent means the default (60).
    public var udpIdleTimeout: Int?

    public init(_ app: ExposedAppConfig) {
        appName = app.appName
        allowedSites = app.allowedSites
        proxyProtocol = app.proxyProtocol?.rawValue
        udpIdleTimeout =
            app.udpIdleTimeout == ExposedAppConfig.defaultUDPIdleTimeout
            ? nil : Int(app.udpIdleTimeout.components.seconds)
        switch app.mode {
        case .single(let socket):
            mode = "single"
            appSocket = socket.description
            portRange = []
            addressRange = []
        case .range(let ports, let addresses):
            mode = "range"
            appSocket = nil
            portRange = ports.map {
                $0.lowerBound == $0.upperBound ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)"
            }
            addressRange = addresses.map(\.description)
            if app.protocols != [.tcp] { protocols = app.protocols.map(\.rawValue).sorted() }
        }
    }

    private enum CodingKeys: String, CodingKey {
        case appName, mode, appSocket, portRange, addressRange, allowedSites, proxyProtocol, protocols, udpIdleTimeout
    }

    /// `allowedSites` may be absent: state files written before it existed still load.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        appName = try container.decode(String.self, forKey: .appName)
        mode = try container.decode(String.self, forKey: .mode)
        appSocket = try container.decodeIfPresent(String.self, forKey: .appSocket)
        portRange = try container.decode([String].self, forKey: .portRange)
        addressRange = try container.decode([String].self, forKey: .addressRange)
        allowedSites = try container.decodeIfPresent([String].self, forKey: .allowedSites) ?? []
        proxyProtocol = try container.decodeIfPresent(String.self, forKey: .proxyProtocol)
        protocols = try container.decodeIfPresent([String].self, forKey: .protocols)
        udpIdleTimeout = try container.decodeIfPresent(Int.self, forKey: .udpIdleTimeout)
    }

    /// Every key written, `appSocket` as null for range apps (the API's documented form).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(appName, forKey: .appName)
        try container.encode(mode, forKey: .mode)
        try container.encode(appSocket, forKey: .appSocket)
        try container.encode(portRange, forKey: .portRange)
        try container.encode(addressRange, forKey: .addressRange)
        try container.encode(allowedSites, forKey: .allowedSites)
        // Left out when none, so an older weft still reads the entry (it refuses unknown keys).
        try container.encodeIfPresent(proxyProtocol, forKey: .proxyProtocol)
        try container.encodeIfPresent(protocols, forKey: .protocols)
        try container.encodeIfPresent(udpIdleTimeout, forKey: .udpIdleTimeout)
    }
}

/// A `remoteApps` entry as JSON (see `ExposedAppDocument`).
public struct RemoteAppDocument: Codable, Sendable, Equatable {
    public var siteName: String
    public var appName: String
    public var localSocket: String
    public var appSocket: String?
    public var localSocketMode: String?
    /// `udp:` local sockets: seconds; absent means the default (60).
    public var udpIdleTimeout: Int?
    /// `udp:` local sockets: client addresses at once; absent means the default (1,024).
    public var udpMaxFlows: Int?

    public init(_ app: RemoteAppConfig) {
        siteName = app.siteName
        appName = app.appName
        localSocket = app.localSocket.description
        appSocket = app.appSocket?.description
        localSocketMode = app.localSocketMode.map { "0" + String($0, radix: 8) }
        udpIdleTimeout =
            app.udpIdleTimeout == ExposedAppConfig.defaultUDPIdleTimeout
            ? nil : Int(app.udpIdleTimeout.components.seconds)
        udpMaxFlows = app.udpMaxFlows == RemoteAppConfig.defaultUDPMaxFlows ? nil : app.udpMaxFlows
    }

    private enum CodingKeys: String, CodingKey {
        case siteName, appName, localSocket, appSocket, localSocketMode, udpIdleTimeout, udpMaxFlows
    }

    /// Every key written, absent values as null (the API's documented form).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(siteName, forKey: .siteName)
        try container.encode(appName, forKey: .appName)
        try container.encode(localSocket, forKey: .localSocket)
        try container.encode(appSocket, forKey: .appSocket)
        try container.encode(localSocketMode, forKey: .localSocketMode)
        // Left out when the default, so an older weft still reads the entry.
        try container.encodeIfPresent(udpIdleTimeout, forKey: .udpIdleTimeout)
        try container.encodeIfPresent(udpMaxFlows, forKey: .udpMaxFlows)
    }
}
