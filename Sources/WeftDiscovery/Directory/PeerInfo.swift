import WeftIdentity
import WeftWire

/// A site the directory currently believes in.
public struct PeerInfo: Sendable, Hashable {
    public var siteName: String
    /// The pinned fingerprint its messages are signed with; links must present this certificate.
    public var fingerprint: CertificateFingerprint
    public var announcement: SiteAnnouncement

    public init(siteName: String, fingerprint: CertificateFingerprint, announcement: SiteAnnouncement) {
        self.siteName = siteName
        self.fingerprint = fingerprint
        self.announcement = announcement
    }
}

/// What the directory tells the rest of the site.
public enum DirectoryEvent: Sendable, Hashable {
    /// A site appeared (or came back).
    case up(PeerInfo)
    /// A known site announced something different: endpoints, apps, or a restart (a new instance).
    case changed(PeerInfo)
    /// A site is gone.
    case down(siteName: String, reason: DownReason)
    /// A site that is up asks this one to punch a path (or answers its request).
    case rendezvous(from: String, Rendezvous)

    public var siteName: String {
        switch self {
        case .up(let peer), .changed(let peer): peer.siteName
        case .down(let name, _): name
        case .rendezvous(let name, _): name
        }
    }
}

/// Why a site is considered gone.
public enum DownReason: String, Sendable, Hashable {
    /// It said goodbye on a clean stop.
    case stopped
    /// The broker published its last will: its connection died.
    case vanished
    /// It stopped refreshing its announcement.
    case timedOut = "timed out"
    /// The operator changed the pins and its identity is no longer trusted.
    case untrusted
    /// Its identity was revoked, here or by a site in `crypto.revokers`.
    case revoked
    /// Its certificate expired: it must rotate its identity (`weft identity --rotate`).
    case expired
}

/// Whom the directory believes for a site name it has no pin for.
public enum TrustMode: String, Sendable, Hashable, CaseIterable {
    /// The first identity seen for a name is pinned (the default, as SSH does).
    case firstUse = "first-use"
    /// Only identities pinned by the operator (`crypto.pinnedSites`, `weft trust pin`).
    case pinned
}
