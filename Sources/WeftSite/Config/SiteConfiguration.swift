import WeftDiscovery
import WeftIdentity

/// A validated site configuration with every default applied.
///
/// Key names follow kungze/wovenet's `config.yaml`, so a wovenet file loads unchanged; weft's
/// additions are marked in `config.yaml` at the top of the repository.
public struct SiteConfiguration: Sendable, Equatable {
    /// Globally unique name of this site (1–255 bytes).
    public var siteName: String
    /// The mesh key: every site sharing it (and the topic) joins the same mesh.
    public var crypto: CryptoSettings
    public var logger: LoggerSettings
    public var messageChannel: MessageChannelSettings
    public var tunnel: TunnelSettings
    public var localExposedApps: [ExposedAppConfig]
    public var remoteApps: [RemoteAppConfig]
    public var restfulApi: RestfulAPISettings
    /// Where the identity and trusted peers live (weft). Absolute, `~` expanded.
    public var stateDir: String
    /// wovenet's top-level `stun` list: STUN servers used when a socket names none.
    public var stun: [String]
    /// weft: what this site does for peers' speed tests.
    public var speedtest: SpeedtestSettings

    public init(
        siteName: String,
        crypto: CryptoSettings,
        logger: LoggerSettings = .init(),
        messageChannel: MessageChannelSettings,
        tunnel: TunnelSettings = .init(),
        localExposedApps: [ExposedAppConfig] = [],
        remoteApps: [RemoteAppConfig] = [],
        restfulApi: RestfulAPISettings = .init(),
        stateDir: String,
        stun: [String] = [],
        speedtest: SpeedtestSettings = .init()
    ) {
        self.siteName = siteName
        self.crypto = crypto
        self.logger = logger
        self.messageChannel = messageChannel
        self.tunnel = tunnel
        self.localExposedApps = localExposedApps
        self.remoteApps = remoteApps
        self.restfulApi = restfulApi
        self.stateDir = stateDir
        self.stun = stun
        self.speedtest = speedtest
    }
}

/// `crypto`: the mesh key, and whom to trust. The key's text never appears in a description or
/// a log line.
public struct CryptoSettings: Sendable, Equatable, CustomStringConvertible {
    /// The placeholder key of the sample config.yaml (and of the Debian package's, before its
    /// first install puts a random key in): `weft run` refuses it, since every copy of the
    /// sample would otherwise join the same mesh.
    public static let sampleKey = "change-me-to-a-long-random-secret"

    public var key: String
    /// `previousKeys`: keys being rotated out, still read and announced under (see `MeshKeyRing`).
    public var previousKeys: [String]
    /// `first-use` (default): the first identity seen for a site name is pinned; `pinned`: only
    /// identities in `pinnedSites` or the trust file (`weft trust pin`).
    public var trust: TrustMode
    /// `pinnedSites`: site name → identity fingerprint, winning over the trust file.
    public var pinnedSites: [String: CertificateFingerprint]
    /// `revokers`: sites whose announced revocations (`weft trust revoke` there) apply here too.
    public var revokers: [String]

    public init(
        key: String, previousKeys: [String] = [], trust: TrustMode = .firstUse,
        pinnedSites: [String: CertificateFingerprint] = [:], revokers: [String] = []
    ) {
        self.key = key
        self.previousKeys = previousKeys
        self.revokers = revokers
        self.trust = trust
        self.pinnedSites = pinnedSites
    }

    public var description: String {
        "CryptoSettings(key: <\(key.utf8.count) bytes>, previousKeys: \(previousKeys.count), "
            + "trust: \(trust.rawValue), pinnedSites: \(pinnedSites.count), revokers: \(revokers.count))"
    }
}
