import Foundation

/// `restfulApi`: the operator's HTTP API.
public struct RestfulAPISettings: Sendable, Equatable {
    public struct BasicAuthUser: Sendable, Equatable, CustomStringConvertible {
        public var user: String
        public var password: String
        public init(user: String, password: String) {
            self.user = user
            self.password = password
        }
        public var description: String { "BasicAuthUser(\(user))" }
    }

    public static let defaultListenAddress = "127.0.0.1:18080"

    public var enabled: Bool
    /// `listenAddr`: host part (IP literal, `localhost`, or empty for all addresses).
    public var listenHost: String
    public var listenPort: Int
    public var tlsEnabled: Bool
    public var tlsKeyFile: String?
    public var tlsCertFile: String?
    public var basicAuth: [BasicAuthUser]
    /// wovenet's `restfulApi.logger.file`: where the API's access log goes.
    public var logFile: String?
    /// *weft*: the only directory where remote apps added over the API may open Unix sockets
    /// (absolute, standardized); nil refuses Unix sockets over the API.
    public var socketDirectory: String?

    public init(
        enabled: Bool = false,
        listenHost: String = "127.0.0.1",
        listenPort: Int = 18080,
        tlsEnabled: Bool = false,
        tlsKeyFile: String? = nil,
        tlsCertFile: String? = nil,
        basicAuth: [BasicAuthUser] = [],
        logFile: String? = nil,
        socketDirectory: String? = nil
    ) {
        self.enabled = enabled
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.tlsEnabled = tlsEnabled
        self.tlsKeyFile = tlsKeyFile
        self.tlsCertFile = tlsCertFile
        self.basicAuth = basicAuth
        self.logFile = logFile
        self.socketDirectory = socketDirectory
    }

    /// Why a remote app added over the API may not listen on `path`, or nil when it may: a path
    /// outside `socketDirectory` (after `..` and symlinks of the directory are resolved), or any
    /// path when no directory is configured.
    public func problem(withAPISocketPath path: String) -> String? {
        guard let socketDirectory else {
            return "Unix sockets can be added over the API only inside restfulApi.socketDirectory, which is not set"
        }
        let resolvedDirectory = (socketDirectory as NSString).resolvingSymlinksInPath
        let parent = ((path as NSString).standardizingPath as NSString).deletingLastPathComponent
        let resolvedParent = (parent as NSString).resolvingSymlinksInPath
        guard path.hasPrefix("/"), !path.split(separator: "/").contains(".."),
            resolvedParent == resolvedDirectory || resolvedParent.hasPrefix(resolvedDirectory + "/")
        else {
            return "\(path) is outside restfulApi.socketDirectory (\(socketDirectory))"
        }
        return nil
    }
}
