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

    public init(
        enabled: Bool = false,
        listenHost: String = "127.0.0.1",
        listenPort: Int = 18080,
        tlsEnabled: Bool = false,
        tlsKeyFile: String? = nil,
        tlsCertFile: String? = nil,
        basicAuth: [BasicAuthUser] = [],
        logFile: String? = nil
    ) {
        self.enabled = enabled
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.tlsEnabled = tlsEnabled
        self.tlsKeyFile = tlsKeyFile
        self.tlsCertFile = tlsCertFile
        self.basicAuth = basicAuth
        self.logFile = logFile
    }
}
