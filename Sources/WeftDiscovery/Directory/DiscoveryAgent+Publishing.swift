import Foundation
import WeftIdentity
import WeftWire

/// What the agent says on the message channel: its announcement, its goodbye, each sealed and
/// signed on its own presence topic.
extension DiscoveryAgent {
    func announce() {
        shared.announcing.withLock { count in
            count += 1
            announceNow()
        }
    }

    private func announceNow() {
        let (session, apps, endpoints, revoked) = shared.state.withLock { state in
            state.lastAnnounce = clock.now - started
            return (state.session, state.apps, state.endpoints, state.machine.revokedHere)
        }
        let announcement = SiteAnnouncement(
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
        publish(.announcement, body: announcement.serialized())
    }

    /// Announces, on this connection, the session the next one will have. A disconnect meant to
    /// be clean can still reach the broker as a reset (the socket closed with a message from the
    /// broker unread), and then the broker publishes this connection's will; every peer has by
    /// then moved on to the next session, so it drops that will as `stale session`.
    func announceNextSession() {
        shared.state.withLock { state in
            let session = Self.newSession()
            state.session = session
            state.nextSession = session
        }
        announce()
    }

    func sayGoodbye() {
        let (session, connected) = shared.state.withLock { ($0.session, $0.connected) }
        guard connected else { return }
        publish(.goodbye, body: SiteGoodbye(session: session, reason: .stopped).serialized())
    }

    /// Publishes under every key of the ring, each copy a message of its own (own id), so a
    /// site reading under two keys takes the second copy as a repeat of nothing.
    func publish(_ kind: DiscoveryMessage.Kind, body: [UInt8]) {
        for keys in ring.all {
            let topic = keys.presenceTopic(for: configuration.siteName)
            do {
                let message = Self.message(kind, name: configuration.siteName, identity: identity, body: body)
                let payload = try EnvelopeSealer(keys: keys).seal(message, identity: identity, topic: topic)
                try client.publish(topic: topic, payload: payload, qos: 1, retain: true)
            } catch {
                logger.warning("message channel: cannot publish: \(error)")
            }
        }
    }

    /// Sends `rendezvous` to its addressee, on its rendezvous topic under every key, not
    /// retained (a rendezvous is for now, not for whoever connects later).
    public func send(_ rendezvous: Rendezvous) {
        guard shared.state.withLock({ $0.connected }) else { return }
        let body = rendezvous.serialized()
        for keys in ring.all {
            let topic = keys.rendezvousTopic(to: rendezvous.to, from: configuration.siteName)
            do {
                let message = Self.message(.rendezvous, name: configuration.siteName, identity: identity, body: body)
                let payload = try EnvelopeSealer(keys: keys).seal(message, identity: identity, topic: topic)
                try client.publish(topic: topic, payload: payload, qos: 1, retain: false)
            } catch {
                logger.warning("message channel: cannot send a rendezvous: \(error)")
            }
        }
    }

    /// Subscribes to every key's presence topics and this site's rendezvous topics.
    func subscribe() {
        var seen: Set<String> = []
        let own = ring.all.map { $0.rendezvousSubscription(for: configuration.siteName) }.filter {
            seen.insert($0).inserted
        }
        for subscription in ring.subscriptions + own {
            do {
                try client.subscribe(subscription)
            } catch {
                logger.warning("message channel: \(error)")
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
