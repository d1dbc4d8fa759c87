import Foundation
import WeftIdentity
import WeftWire

/// What the agent says on the message channel: its announcement, its goodbye, each sealed and
/// signed on its own presence topic, on every broker it is connected to (each with the session
/// of its connection there).
extension DiscoveryAgent {
    /// Announces on `brokers` (those connected of them), or on every broker connected.
    func announce(on brokers: [Int]? = nil) {
        shared.announcing.withLock { count in
            count += 1
            announceNow(on: brokers)
        }
    }

    private func announceNow(on brokers: [Int]?) {
        let (sessions, apps, endpoints, revoked) = shared.state.withLock { state in
            let connected = state.connectedBrokers
            let targets = connected.filter { brokers?.contains($0) ?? true }
            // Announcing on every broker connected (one just connected, in the usual one-broker
            // mesh) is the refresh: the next is due an interval later, not at the next tick,
            // which made every site announce twice on start and each peer check both.
            if targets.count == connected.count { state.lastAnnounce = clock.now - started }
            return (
                targets.map { ($0, state.brokers[$0].session) }, state.apps, state.endpoints,
                state.machine.revokedHere
            )
        }
        for (index, session) in sessions {
            let announcement = announcement(session: session, apps: apps, endpoints: endpoints, revoked: revoked)
            publish(.announcement, body: announcement.serialized(), on: index)
        }
    }

    private func announcement(
        session: [UInt8], apps: [String], endpoints: [SiteAnnouncement.Endpoint], revoked: [CertificateFingerprint]
    ) -> SiteAnnouncement {
        SiteAnnouncement(
            protocolVersion: WireProtocol.version,
            capabilities: configuration.capabilities,
            instance: instance,
            session: session,
            siteID: identity.siteID,
            softwareVersion: configuration.softwareVersion,
            refreshSeconds: UInt16(clamping: configuration.refreshInterval.components.seconds),
            endpoints: endpoints,
            apps: apps,
            revoked: revoked.prefix(SiteAnnouncement.Limits.revoked).map(\.bytes),
            previousCertificate: configuration.endorsement?.previousCertificate ?? [],
            previousSignature: configuration.endorsement?.signature ?? []
        )
    }

    /// Announces, on broker `index`'s connection, the session its next one will have. A
    /// disconnect meant to be clean can still reach the broker as a reset (the socket closed
    /// with a message from the broker unread), and then the broker publishes this connection's
    /// will; every peer has by then moved on to the next session, so that will ends nothing.
    func announceNextSession(on index: Int) {
        shared.state.withLock { state in
            let session = Self.newSession()
            state.brokers[index].session = session
            state.brokers[index].nextSession = session
        }
        announce(on: [index])
    }

    /// A clean stop, said on every broker connected.
    func sayGoodbye() {
        let sessions = shared.state.withLock { state in
            state.connectedBrokers.map { ($0, state.brokers[$0].session) }
        }
        for (index, session) in sessions {
            publish(.goodbye, body: SiteGoodbye(session: session, reason: .stopped).serialized(), on: index)
        }
    }

    /// Publishes on broker `index` under every key of the ring, each copy a message of its own
    /// (own id), so a site reading under two keys takes the second copy as a repeat of nothing.
    func publish(_ kind: DiscoveryMessage.Kind, body: [UInt8], on index: Int) {
        for keys in ring.all {
            let topic = keys.presenceTopic(for: configuration.siteName)
            do {
                let message = Self.message(kind, name: configuration.siteName, identity: identity, body: body)
                let payload = try EnvelopeSealer(keys: keys).seal(message, identity: identity, topic: topic)
                try clients[index].publish(topic: topic, payload: payload, qos: 1, retain: true)
            } catch {
                logger.warning(
                    "message channel: cannot publish: \(error)", metadata: ["broker": .string(brokerName(index))])
            }
        }
    }

    /// Sends `rendezvous` to its addressee, on its rendezvous topic under every key, not
    /// retained (a rendezvous is for now, not for whoever connects later). The same sealed
    /// copy goes to every broker connected: the addressee takes the first and drops the others
    /// as duplicates.
    public func send(_ rendezvous: Rendezvous) {
        let brokers = shared.state.withLock { $0.connectedBrokers }
        guard !brokers.isEmpty else { return }
        let body = rendezvous.serialized()
        for keys in ring.all {
            let topic = keys.rendezvousTopic(to: rendezvous.to, from: configuration.siteName)
            let payload: [UInt8]
            do {
                let message = Self.message(.rendezvous, name: configuration.siteName, identity: identity, body: body)
                payload = try EnvelopeSealer(keys: keys).seal(message, identity: identity, topic: topic)
            } catch {
                logger.warning("message channel: cannot seal a rendezvous: \(error)")
                continue
            }
            for index in brokers {
                do {
                    try clients[index].publish(topic: topic, payload: payload, qos: 1, retain: false)
                } catch {
                    logger.warning(
                        "message channel: cannot send a rendezvous: \(error)",
                        metadata: ["broker": .string(brokerName(index))])
                }
            }
        }
    }

    /// Subscribes, on broker `index` or on every broker connected, to every key's presence
    /// topics and this site's rendezvous topics.
    func subscribe(on index: Int? = nil) {
        var seen: Set<String> = []
        let own = ring.all.map { $0.rendezvousSubscription(for: configuration.siteName) }.filter {
            seen.insert($0).inserted
        }
        let brokers = index.map { [$0] } ?? shared.state.withLock { $0.connectedBrokers }
        for broker in brokers {
            for subscription in ring.subscriptions + own {
                do {
                    try clients[broker].subscribe(subscription)
                } catch {
                    logger.warning("message channel: \(error)", metadata: ["broker": .string(brokerName(broker))])
                }
            }
        }
    }

    var ring: MeshKeyRing { shared.state.withLock { $0.ring } }

    func now() -> DirectoryStateMachine.Now {
        DirectoryStateMachine.Now(
            wallMillis: UInt64(max(0, Date().timeIntervalSince1970 * 1000)),
            uptime: clock.now - started
        )
    }

    static func message(_ kind: DiscoveryMessage.Kind, name: String, identity: SiteIdentity, body: [UInt8])
        -> DiscoveryMessage
    {
        DiscoveryMessage(
            kind: kind,
            timestampMillis: UInt64(max(0, Date().timeIntervalSince1970 * 1000)),
            messageID: (0..<DiscoveryMessage.messageIDLength).map { _ in UInt8.random(in: 0...255) },
            senderName: name,
            senderCertificate: identity.certificateDER,
            body: body
        )
    }

    static func newSession() -> [UInt8] {
        (0..<SiteAnnouncement.sessionLength).map { _ in UInt8.random(in: 0...255) }
    }
}
