/// One entry of `remoteApps`: an app of another site, offered here on a local socket.
public struct RemoteAppConfig: Sendable, Equatable {
    public var siteName: String
    public var appName: String
    /// Where this site listens for the app's clients.
    public var localSocket: AppSocket
    /// For range apps: the target the far site should connect to.
    public var appSocket: AppSocket?
    /// *weft*: the mode of a `unix:` local socket's file; nil means 0660 (owner and group).
    public var localSocketMode: Int?
    /// *weft*, `udp:` local sockets: how long a client address's flow lives without a datagram.
    public var udpIdleTimeout: Duration
    /// *weft*, `udp:` local sockets: client addresses carried at once; a new one beyond is
    /// dropped (and logged) until a flow ends.
    public var udpMaxFlows: Int

    public static let defaultUDPMaxFlows = 1024
    public static let udpMaxFlowsRange = 1...65_536

    public init(
        siteName: String, appName: String, localSocket: AppSocket, appSocket: AppSocket? = nil,
        localSocketMode: Int? = nil, udpIdleTimeout: Duration = ExposedAppConfig.defaultUDPIdleTimeout,
        udpMaxFlows: Int = RemoteAppConfig.defaultUDPMaxFlows
    ) {
        self.siteName = siteName
        self.appName = appName
        self.localSocket = localSocket
        self.appSocket = appSocket
        self.localSocketMode = localSocketMode
        self.udpIdleTimeout = udpIdleTimeout
        self.udpMaxFlows = udpMaxFlows
    }

    /// The socket file's mode in force.
    public var effectiveSocketMode: Int { localSocketMode ?? Int(UnixSocketFile.defaultMode) }
}
