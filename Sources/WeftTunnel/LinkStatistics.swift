/// What the engine knows about one link, for operators (API, metrics, dashboard).
public struct LinkStatistics: Sendable, Equatable {
    public var id: LinkID
    /// Smoothed round-trip time; nil before the first acknowledgement.
    public var smoothedRTT: Duration?
    /// Recently seen delivery rate in bytes per second; nil before a sample.
    public var deliveryRate: Double?
    /// Reliable bytes sent and not yet acknowledged.
    public var inFlightBytes: Int
    /// Bytes the peer acknowledged on this link.
    public var deliveredBytes: Int
    /// A missed acknowledgement deadline, until the link shows life again.
    public var suspect: Bool
    /// A backup path: carries data only while no primary link is up.
    public var backup: Bool
    /// Blocked by this site's operator: carries data only when no other link is up.
    public var blocked: Bool
    /// Blocked by the peer's operator (its `linkPolicy` frame): the same.
    public var blockedByPeer: Bool

    public init(
        id: LinkID, smoothedRTT: Duration?, deliveryRate: Double?, inFlightBytes: Int, deliveredBytes: Int,
        suspect: Bool, backup: Bool = false, blocked: Bool = false, blockedByPeer: Bool = false
    ) {
        self.blockedByPeer = blockedByPeer
        self.backup = backup
        self.blocked = blocked
        self.id = id
        self.smoothedRTT = smoothedRTT
        self.deliveryRate = deliveryRate
        self.inFlightBytes = inFlightBytes
        self.deliveredBytes = deliveredBytes
        self.suspect = suspect
    }
}
