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

    public init(
        siteName: String, appName: String, localSocket: AppSocket, appSocket: AppSocket? = nil,
        localSocketMode: Int? = nil
    ) {
        self.siteName = siteName
        self.appName = appName
        self.localSocket = localSocket
        self.appSocket = appSocket
        self.localSocketMode = localSocketMode
    }

    /// The socket file's mode in force.
    public var effectiveSocketMode: Int { localSocketMode ?? Int(UnixSocketFile.defaultMode) }
}
