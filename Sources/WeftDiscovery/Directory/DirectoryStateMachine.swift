import WeftIdentity
import WeftWire

/// The site directory as a value-type state machine: fed verified messages and clock ticks,
/// it returns what to do. It never touches the network, a file or a clock, so every rule —
/// freshness, repeats, pinning, up/changed/down — is tested without sleeping.
///
/// A newcomer learns about existing sites from their retained announcements, which are never
/// older than one refresh period (well inside the freshness window) while those sites are
/// connected; so nobody needs to answer a newcomer, and a mesh of N sites costs N messages to
/// form, not N².
public struct DirectoryStateMachine: Sendable {
    public struct Configuration: Sendable {
        /// This site, whose own messages come back from the broker and are ignored.
        public var ownName: String
        public var ownFingerprint: CertificateFingerprint
        /// Messages older than this are dropped.
        public var freshnessWindow: Duration
        /// Messages from further ahead than this are dropped.
        public var allowedClockSkew: Duration
        /// A peer that misses this many of its announced refreshes is down.
        public var missedRefreshes: Int
        /// Replay-cache entries kept at most.
        public var replayCacheLimit: Int
        /// Broker sessions tracked per peer at most (one per broker it announces on, plus
        /// those it left behind by reconnecting): a member inventing sessions grows nothing.
        public var maxSessionsPerPeer: Int
        /// Whom to believe: the first identity seen for a name, or only pinned ones.
        public var trust: TrustMode
        /// Site names pinned on first use at most (5× the 200-site design point): a member
        /// inventing names cannot grow the directory or the trust file without end.
        public var maxSites: Int
        /// Sites whose announced revocations this site applies too (`crypto.revokers`). Any
        /// other member's are ignored: a member must not be able to cut others off the mesh.
        public var revokers: Set<String>

        public init(
            ownName: String,
            ownFingerprint: CertificateFingerprint,
            freshnessWindow: Duration = .seconds(120),
            allowedClockSkew: Duration = .seconds(30),
            missedRefreshes: Int = 3,
            replayCacheLimit: Int = 65_536,
            maxSessionsPerPeer: Int = 16,
            trust: TrustMode = .firstUse,
            maxSites: Int = 1024,
            revokers: Set<String> = []
        ) {
            self.ownName = ownName
            self.ownFingerprint = ownFingerprint
            self.freshnessWindow = freshnessWindow
            self.allowedClockSkew = allowedClockSkew
            self.missedRefreshes = missedRefreshes
            self.replayCacheLimit = replayCacheLimit
            self.maxSessionsPerPeer = maxSessionsPerPeer
            self.trust = trust
            self.maxSites = maxSites
            self.revokers = revokers
        }
    }

    /// The two clocks the rules need: wall time for message timestamps, monotonic time for silence.
    public struct Now: Sendable {
        /// Milliseconds since 1970.
        public var wallMillis: UInt64
        /// Monotonic time since some fixed start.
        public var uptime: Duration

        public init(wallMillis: UInt64, uptime: Duration) {
            self.wallMillis = wallMillis
            self.uptime = uptime
        }
    }

    public enum Action: Sendable, Hashable {
        /// Tell the site.
        case emit(DirectoryEvent)
        /// Remember this identity for this name from now on (trust on first use).
        case pin(siteName: String, fingerprint: CertificateFingerprint)
        /// A message was refused; `quiet` marks expected cases (old retained messages, our own
        /// echo) that deserve a debug line, not a warning.
        case drop(DropReason, sender: String?, quiet: Bool)
        /// The revocations changed (a revoker's announcement, a reload): keep them. `lifted`:
        /// some identity is no longer revoked, so retained announcements are worth hearing again.
        case saveRevocations(lifted: Bool)
        /// A site not in `crypto.revokers` announces revocations: not applied (logged once a change).
        case ignoredRevocations(by: String, count: Int)
        /// A revoker revoked this site's own identity: it can no longer reach sites that listen.
        case revokedHere(by: String)
        /// This site's own last will came back: a broker published it for a connection of ours
        /// that died, and where brokers share retained messages (bridged, clustered) it now
        /// stands for this site on its presence topic. Announce again on the connections up.
        case ownWillHeard
        /// A site rotated its identity and the pinned one endorsed the new: pinned anew.
        case repinned(siteName: String, from: CertificateFingerprint, to: CertificateFingerprint)
    }

    struct Peer {
        var info: PeerInfo
        var isUp: Bool
        /// The broker sessions it is alive on, with when each last announced. A site announces
        /// on every broker it is connected to, each connection its own session; it is up while
        /// any of them is, and a last will ends only the session it belongs to.
        var sessions: [[UInt8]: Duration]
        var lastTimestamp: UInt64
    }

    /// When a message id was first taken, and through which brokers (bit `via`) it came.
    struct Seen {
        var timestamp: UInt64
        var via: UInt64
    }

    /// Brokers told apart by `via` (a bit each in `Seen`).
    public static let maxBrokers = 64

    public private(set) var configuration: Configuration
    private var peers: [String: Peer] = [:]
    public private(set) var pins: [String: CertificateFingerprint]
    /// The name each pinned identity speaks for (one name per certificate).
    private var pinnedNames: [CertificateFingerprint: String] = [:]
    private var seenIDs: [[UInt8]: Seen] = [:]
    private var seenOrder: [([UInt8], UInt64)] = []
    private var seenOrderStart = 0
    public private(set) var dropCounts: [DropReason: Int] = [:]
    /// Identities refused whatever name they use: revoked here, or by a revoker.
    public private(set) var revoked: [CertificateFingerprint: Revocation]
    /// How many revocations each site that is not a revoker announced last: logged on a change.
    private var ignoredRevocations: [String: Int] = [:]
    /// Revokers already reported as revoking this site's own identity.
    private var revokingUs: Set<String> = []

    public init(
        configuration: Configuration, pins: [String: CertificateFingerprint] = [:],
        revoked: [CertificateFingerprint: Revocation] = [:]
    ) {
        self.configuration = configuration
        self.pins = pins
        self.pinnedNames = Self.names(of: pins)
        self.revoked = revoked.filter { $0.value.revokedBy.map(configuration.revokers.contains) ?? true }
    }

    /// Takes the revocations from the file and the revokers from the config (SIGHUP after
    /// `weft trust revoke`): those learned from a site that is no longer a revoker are lifted,
    /// revokers' current announcements are applied again, and a peer whose identity is now
    /// revoked goes down at once (its tunnel is closed, its links refused).
    public mutating func replaceRevocations(
        _ stored: [CertificateFingerprint: Revocation], revokers: Set<String>
    ) -> [Action] {
        configuration.revokers = revokers
        let before = revoked
        revoked = stored.filter { $0.value.revokedBy.map(revokers.contains) ?? true }
        ignoredRevocations.removeAll()
        revokingUs.removeAll()
        var actions: [Action] = []
        for name in peers.keys.sorted() {
            guard let peer = peers[name], peer.isUp else { continue }  // dropped by an earlier revoker
            actions += applyRevocations(from: name, peer.info)
        }
        for fingerprint in revoked.keys where before[fingerprint] == nil {
            actions += dropPeers(signedBy: fingerprint)
        }
        let lifted = before.keys.contains { revoked[$0] == nil }
        if revoked != stored || lifted,
            !actions.contains(where: { if case .saveRevocations = $0 { true } else { false } })
        {
            actions.append(.saveRevocations(lifted: lifted))
        }
        return actions
    }

    /// The identities this site's operator revoked, which its announcement carries.
    public var revokedHere: [CertificateFingerprint] {
        revoked.filter { $0.value.revokedBy == nil }.keys.sorted { $0.description < $1.description }
    }

    /// Takes new pins and trust mode (the operator pinned or forgot a site, then SIGHUP). A peer
    /// that is up under an identity no longer trusted goes down at once.
    public mutating func replaceTrust(pins newPins: [String: CertificateFingerprint], trust: TrustMode) -> [Action] {
        pins = newPins
        pinnedNames = Self.names(of: newPins)
        configuration.trust = trust
        var actions: [Action] = []
        for (name, peer) in peers.sorted(by: { $0.key < $1.key }) {
            let pin = pins[name]
            let trusted = pin == peer.info.fingerprint || (pin == nil && trust == .firstUse)
            guard !trusted else { continue }
            peers[name] = nil
            // Down or not: the site may still hold a tunnel whose links are alive.
            actions.append(.emit(.down(siteName: name, reason: .untrusted)))
        }
        return actions
    }

    /// Pinned identities by fingerprint; of two names pinned to one identity (a file from before
    /// the one-name rule), the first in order keeps it.
    private static func names(of pins: [String: CertificateFingerprint]) -> [CertificateFingerprint: String] {
        var names: [CertificateFingerprint: String] = [:]
        for (name, fingerprint) in pins.sorted(by: { $0.key < $1.key }) where names[fingerprint] == nil {
            names[fingerprint] = name
        }
        return names
    }

    /// The broker sessions a peer is up on here (0 when it is down or unknown).
    public func liveSessions(of siteName: String) -> Int {
        guard let peer = peers[siteName], peer.isUp else { return 0 }
        return peer.sessions.count
    }

    /// How many peers are up, without copying them.
    public var peersUpCount: Int {
        peers.values.reduce(0) { $0 + ($1.isUp ? 1 : 0) }
    }

    /// Peers currently up, by name.
    public var peersUp: [String: PeerInfo] {
        peers.compactMapValues { $0.isUp ? $0.info : nil }
    }

    /// Why `message` would be refused as from the future, stale or a repeat, or nil: asked
    /// before it takes a place in the queue, so a replayed genuine message costs its sender's
    /// budget nothing (else replays of a site's old messages could starve its real ones).
    /// Retained copies are left to `receive` (old ones are expected, and dropped quietly there).
    /// `via` is the broker it came through: a copy through another broker is a `duplicate`.
    public func precheck(_ message: DiscoveryMessage, retained: Bool, via: Int = 0, now: Now) -> DropReason? {
        let skew = UInt64(configuration.allowedClockSkew.inMilliseconds)
        if message.timestampMillis > now.wallMillis + skew { return .future }
        guard !retained else { return nil }
        if let seen = seenIDs[message.messageID] { return Self.repeated(seen, via: via) }
        // A last will may be old (sealed when its connection started); the directory binds it to
        // the session instead.
        let window = UInt64(configuration.freshnessWindow.inMilliseconds)
        if message.kind != .goodbye, message.timestampMillis + window < now.wallMillis { return .stale }
        return nil
    }

    /// A message refused before it reached `receive` (it could not be opened, or `precheck`).
    public mutating func refused(_ reason: DropReason) -> [Action] {
        dropCounts[reason, default: 0] += 1
        return [.drop(reason, sender: nil, quiet: reason == .duplicate)]
    }

    /// Why a message whose id was `seen` before is refused now: coming again through a broker
    /// it came through already, it is replayed; through another, it is the copy that brokers
    /// sharing messages (bridged, clustered) deliver, or a rendezvous sent on every broker.
    private static func repeated(_ seen: Seen, via: Int) -> DropReason {
        seen.via & bit(via) != 0 ? .replayed : .duplicate
    }

    private static func bit(_ via: Int) -> UInt64 {
        UInt64(1) << UInt64(min(max(via, 0), maxBrokers - 1))
    }

    /// A message that opened and whose signature verified, taken through broker `via`.
    public mutating func receive(_ verified: VerifiedDiscoveryMessage, retained: Bool, via: Int = 0, now: Now)
        -> [Action]
    {
        let message = verified.message
        let name = message.senderName
        if name == configuration.ownName {
            guard verified.fingerprint == configuration.ownFingerprint else {
                return drop(.impostor, sender: name, quiet: false)
            }
            if message.kind == .goodbye, let goodbye = try? SiteGoodbye(parsing: message.body),
                goodbye.reason == .lastWill
            {
                return [.ownWillHeard]
            }
            return []
        }
        if revoked[verified.fingerprint] != nil { return drop(.revoked, sender: name, quiet: false) }
        if verified.notValidAfterMillis < now.wallMillis {
            // Up under it until now: down, and its certificate no longer opens a link either.
            var actions = drop(.expired, sender: name, quiet: retained)
            if let peer = peers[name], peer.info.fingerprint == verified.fingerprint {
                peers[name] = nil
                actions.append(.emit(.down(siteName: name, reason: .expired)))
            }
            return actions
        }

        if message.kind == .rendezvous { return rendezvous(verified, via: via, now: now) }

        var lastWill: SiteGoodbye?
        if message.kind == .goodbye, let goodbye = try? SiteGoodbye(parsing: message.body),
            goodbye.reason == .lastWill
        {
            lastWill = goodbye
        }
        let window = UInt64(configuration.freshnessWindow.inMilliseconds)
        let skew = UInt64(configuration.allowedClockSkew.inMilliseconds)
        if message.timestampMillis > now.wallMillis + skew {
            return drop(.future, sender: name, quiet: false)
        }
        // A last will is sealed when its connection starts and published when it dies, so it
        // may be old; it is bound to the peer's current session instead.
        if lastWill == nil, message.timestampMillis + window < now.wallMillis {
            return drop(.stale, sender: name, quiet: retained)
        }
        // The pin this message's identity replaces, when the pinned identity endorsed it.
        var rotatedFrom: CertificateFingerprint?
        if let pinned = pins[name] {
            if pinned != verified.fingerprint {
                guard endorsed(message, by: pinned, for: verified.fingerprint) else {
                    return drop(.impostor, sender: name, quiet: false)
                }
                rotatedFrom = pinned
            }
        } else if verified.fingerprint == configuration.ownFingerprint {
            return drop(.impostor, sender: name, quiet: false)
        } else if pinnedNames[verified.fingerprint] != nil {
            return drop(.secondName, sender: name, quiet: false)
        } else if configuration.trust == .pinned {
            return drop(.notPinned, sender: name, quiet: false)
        } else if pins.count >= configuration.maxSites {
            return drop(.tooManySites, sender: name, quiet: false)
        }
        if let seen = seenIDs[message.messageID] {
            // After a reconnect the broker hands out its retained copies again: expected, not an attack.
            if retained { return [] }
            let reason = Self.repeated(seen, via: via)
            if reason == .duplicate { seenIDs[message.messageID]?.via |= Self.bit(via) }
            return drop(reason, sender: name, quiet: reason == .duplicate)
        }
        remember(message.messageID, timestamp: message.timestampMillis, via: via, now: now)

        var actions: [Action] = []
        if pins[name] == nil || rotatedFrom != nil {
            if let rotatedFrom {
                pinnedNames[rotatedFrom] = nil
                actions.append(.repinned(siteName: name, from: rotatedFrom, to: verified.fingerprint))
            }
            pins[name] = verified.fingerprint
            pinnedNames[verified.fingerprint] = name
            actions.append(.pin(siteName: name, fingerprint: verified.fingerprint))
        }
        switch message.kind {
        case .announcement:
            guard let announcement = try? SiteAnnouncement(parsing: message.body) else {
                return actions + drop(.malformed, sender: name, quiet: false)
            }
            actions += announce(
                name, verified.fingerprint, announcement, timestamp: message.timestampMillis, now: now)
            if peers[name]?.info.announcement == announcement {
                actions += applyRevocations(
                    from: name, PeerInfo(siteName: name, fingerprint: verified.fingerprint, announcement: announcement))
            }
        case .rendezvous:
            return actions  // handled above
        case .goodbye:
            guard let goodbye = lastWill ?? (try? SiteGoodbye(parsing: message.body)) else {
                return actions + drop(.malformed, sender: name, quiet: false)
            }
            guard var peer = peers[name], peer.isUp, peer.sessions[goodbye.session] != nil else {
                return actions + drop(.staleSession, sender: name, quiet: true)
            }
            // A clean stop ends the site; a last will, only the broker connection it was left on.
            if goodbye.reason == .stopped {
                peer.sessions.removeAll()
            } else {
                peer.sessions[goodbye.session] = nil
            }
            if peer.sessions.isEmpty {
                peer.isUp = false
                actions.append(.emit(.down(siteName: name, reason: goodbye.reason == .stopped ? .stopped : .vanished)))
            }
            peers[name] = peer
        }
        return actions
    }

    /// A hole-punching rendezvous: believed only from a site that is up here under the identity
    /// it is up with (it never pins or changes anything), fresh, new, and addressed to us.
    private mutating func rendezvous(_ verified: VerifiedDiscoveryMessage, via: Int, now: Now) -> [Action] {
        let message = verified.message
        let name = message.senderName
        let window = UInt64(configuration.freshnessWindow.inMilliseconds)
        let skew = UInt64(configuration.allowedClockSkew.inMilliseconds)
        if message.timestampMillis > now.wallMillis + skew { return drop(.future, sender: name, quiet: false) }
        if message.timestampMillis + window < now.wallMillis { return drop(.stale, sender: name, quiet: false) }
        guard let peer = peers[name], peer.isUp, peer.info.fingerprint == verified.fingerprint else {
            return drop(.unsolicited, sender: name, quiet: false)
        }
        if let seen = seenIDs[message.messageID] {
            let reason = Self.repeated(seen, via: via)
            if reason == .duplicate { seenIDs[message.messageID]?.via |= Self.bit(via) }
            return drop(reason, sender: name, quiet: reason == .duplicate)
        }
        remember(message.messageID, timestamp: message.timestampMillis, via: via, now: now)
        guard let rendezvous = try? Rendezvous(parsing: message.body) else {
            return drop(.malformed, sender: name, quiet: false)
        }
        guard rendezvous.to == configuration.ownName else { return drop(.unsolicited, sender: name, quiet: false) }
        return [.emit(.rendezvous(from: name, rendezvous))]
    }

    private mutating func announce(
        _ name: String,
        _ fingerprint: CertificateFingerprint,
        _ announcement: SiteAnnouncement,
        timestamp: UInt64,
        now: Now
    ) -> [Action] {
        let info = PeerInfo(siteName: name, fingerprint: fingerprint, announcement: announcement)
        guard var peer = peers[name] else {
            peers[name] = Peer(
                info: info, isUp: true, sessions: [announcement.session: now.uptime], lastTimestamp: timestamp)
            return [.emit(.up(info))]
        }
        // Retained and live copies can cross, and so do one site's announcements on two
        // brokers: an older announcement never overrides a newer one, but its session is alive.
        guard timestamp >= peer.lastTimestamp else {
            if peer.isUp, peer.info.fingerprint == fingerprint {
                peer.keepAlive(announcement.session, now: now.uptime, limit: configuration.maxSessionsPerPeer)
                peers[name] = peer
            }
            return []
        }
        let previous = peer.info.announcement
        let rotated = peer.info.fingerprint != fingerprint
        let wasUp = peer.isUp
        if !wasUp || rotated { peer.sessions.removeAll() }
        peer.info = info
        peer.isUp = true
        peer.keepAlive(announcement.session, now: now.uptime, limit: configuration.maxSessionsPerPeer)
        peer.lastTimestamp = timestamp
        peers[name] = peer
        if !wasUp { return [.emit(.up(info))] }
        return rotated || Self.differs(previous, announcement) ? [.emit(.changed(info))] : []
    }

    /// Whether `message` is an announcement whose endorsement shows that the identity pinned as
    /// `pinned` handed the name over to `fingerprint` (`weft identity --rotate`). Not when the old
    /// identity is revoked, nor when the new one already speaks for another name or is ours.
    private func endorsed(
        _ message: DiscoveryMessage, by pinned: CertificateFingerprint, for fingerprint: CertificateFingerprint
    ) -> Bool {
        guard message.kind == .announcement, revoked[pinned] == nil, pinnedNames[fingerprint] == nil,
            fingerprint != configuration.ownFingerprint,
            let announcement = try? SiteAnnouncement(parsing: message.body),
            !announcement.previousCertificate.isEmpty
        else { return false }
        let endorsement = IdentityEndorsement(
            previousCertificate: announcement.previousCertificate, signature: announcement.previousSignature)
        return endorsement.endorses(fingerprint, for: message.senderName, replacing: pinned)
    }

    /// Applies what a revoker's announcement revokes, and lifts what it no longer does. A
    /// site that is not a revoker changes nothing (it is logged once per change in what it says).
    private mutating func applyRevocations(from name: String, _ info: PeerInfo) -> [Action] {
        let listed = Set(info.announcement.revoked.compactMap { CertificateFingerprint(bytes: $0) })
        guard configuration.revokers.contains(name) else {
            guard ignoredRevocations[name] != listed.count else { return [] }
            ignoredRevocations[name] = listed.count
            return listed.isEmpty ? [] : [.ignoredRevocations(by: name, count: listed.count)]
        }
        var actions: [Action] = []
        var changed = false
        var lifted = false
        if listed.contains(configuration.ownFingerprint) {
            if revokingUs.insert(name).inserted { actions.append(.revokedHere(by: name)) }
        } else {
            revokingUs.remove(name)
        }
        for (fingerprint, revocation) in revoked where revocation.revokedBy == name && !listed.contains(fingerprint) {
            revoked[fingerprint] = nil
            changed = true
            lifted = true
        }
        for fingerprint in listed.sorted(by: { $0.description < $1.description }) where revoked[fingerprint] == nil {
            // Neither this site nor the revoker itself is refused this way.
            guard fingerprint != configuration.ownFingerprint, fingerprint != info.fingerprint else { continue }
            revoked[fingerprint] = Revocation(siteName: pinnedNames[fingerprint], revokedBy: name)
            changed = true
            actions += dropPeers(signedBy: fingerprint)
        }
        if changed { actions.append(.saveRevocations(lifted: lifted)) }
        return actions
    }

    /// Every peer that speaks with `fingerprint` goes down, up or not (it may still hold a
    /// tunnel whose links are alive), and is forgotten until its identity is trusted again.
    private mutating func dropPeers(signedBy fingerprint: CertificateFingerprint) -> [Action] {
        var actions: [Action] = []
        for (name, peer) in peers.sorted(by: { $0.key < $1.key }) where peer.info.fingerprint == fingerprint {
            peers[name] = nil
            actions.append(.emit(.down(siteName: name, reason: .revoked)))
        }
        return actions
    }

    /// Whether consumers should hear about the change (the session alone does not count).
    static func differs(_ a: SiteAnnouncement, _ b: SiteAnnouncement) -> Bool {
        var b = b
        b.session = a.session
        b.refreshSeconds = a.refreshSeconds
        return a != b
    }

    /// Marks silent peers down.
    public mutating func tick(now: Now) -> [Action] {
        var actions: [Action] = []
        for (name, peer) in peers.sorted(by: { $0.key < $1.key }) where peer.isUp {
            let refresh = Duration.seconds(Int(max(peer.info.announcement.refreshSeconds, 1)))
            let allowed = refresh * configuration.missedRefreshes + .seconds(5)
            // Each session times out on its own (a broker that went away takes its session along).
            let alive = peer.sessions.filter { now.uptime - $0.value <= allowed }
            guard alive.count != peer.sessions.count else { continue }
            peers[name]?.sessions = alive
            if alive.isEmpty {
                peers[name]?.isUp = false
                actions.append(.emit(.down(siteName: name, reason: .timedOut)))
            }
        }
        return actions
    }

    private mutating func drop(_ reason: DropReason, sender: String?, quiet: Bool) -> [Action] {
        dropCounts[reason, default: 0] += 1
        return [.drop(reason, sender: sender, quiet: quiet)]
    }

    /// Records a message id until its timestamp leaves the window, with a hard size cap.
    private mutating func remember(_ id: [UInt8], timestamp: UInt64, via: Int, now: Now) {
        let horizon = UInt64((configuration.freshnessWindow + configuration.allowedClockSkew).inMilliseconds)
        // Forget ids whose messages would now be refused as stale anyway.
        while seenOrderStart < seenOrder.count {
            let (oldID, oldTimestamp) = seenOrder[seenOrderStart]
            let expired = oldTimestamp + horizon < now.wallMillis
            guard expired || seenIDs.count >= configuration.replayCacheLimit else { break }
            seenIDs[oldID] = nil
            seenOrderStart += 1
        }
        if seenOrderStart > 1024 && seenOrderStart * 2 > seenOrder.count {
            seenOrder.removeFirst(seenOrderStart)
            seenOrderStart = 0
        }
        seenIDs[id] = Seen(timestamp: timestamp, via: Self.bit(via))
        seenOrder.append((id, timestamp))
    }
}

extension DirectoryStateMachine.Peer {
    /// Notes `session` as alive now; beyond `limit` sessions the one heard from longest ago goes.
    mutating func keepAlive(_ session: [UInt8], now: Duration, limit: Int) {
        sessions[session] = now
        while sessions.count > max(1, limit), let oldest = sessions.min(by: { $0.value < $1.value }) {
            sessions[oldest.key] = nil
        }
    }
}
