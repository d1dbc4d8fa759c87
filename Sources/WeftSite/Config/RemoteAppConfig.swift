/// One entry of `remoteApps`: an app of another site, offered here on a local socket.
public struct RemoteAppConfig: Sendable, Equatable {
    public var siteName: String
    public var appName: String
    /// Where this site listens for the app's clients.
    public var localSocket: AppSocket
    /// For range apps: the target the far site should connect to.
    public var appSocket: AppSocket?

    public init(siteName: String, appName: String, localSocket: AppSocket, appSocket: AppSocket? = nil) {
        self.siteName = siteName
        self.appName = appName
        self.localSocket = localSocket
        self.appSocket = appSocket
    }
}
