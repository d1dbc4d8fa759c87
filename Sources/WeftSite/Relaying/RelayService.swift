import Logging
import Metrics
import NIOConcurrencyHelpers
import WeftTransport
import WeftTunnel
import WeftWire

/// A site's relay (`tunnel.relay`): carries links between other sites of the mesh that ask it
/// to (`RelayProtocol.request` streams), as two spliced streams, within `tunnel.relayLimits`.
/// Only over direct tunnels: a request that arrives on a tunnel with relayed links, or for a
/// site whose tunnel has no direct link, is refused (a relayed link never rides on another).
/// It carries the links' TLS records and cannot read or change them.
final class RelayService: Sendable {
    private let enabled: Bool
    private let siteName: String
    private let book: NIOLockedValueBox<RelayAdmission>
    /// The tunnel to a site, if it has a link now.
    private let tunnel: @Sendable (String) -> TunnelDriver?
    private let refusals = LogLimiter()
    private let logger: Logger

    init(
        enabled: Bool, siteName: String, limits: TunnelSettings.RelayLimits, logger: Logger,
        tunnel: @escaping @Sendable (String) -> TunnelDriver?
    ) {
        self.enabled = enabled
        self.siteName = siteName
        self.book = NIOLockedValueBox(RelayAdmission(perPair: limits.perPair, total: limits.total))
        self.tunnel = tunnel
        self.logger = logger
    }

    /// Relayed links carried now, bytes and links carried so far, per pair of sites.
    var usage: [RelayAdmission.Pair: RelayAdmission.Usage] { book.withLockedValue { $0.pairs } }

    /// For `asker`'s `onIncomingStream`: a `RelayProtocol.request` stream to `target`. Returns
    /// the splice, or nil after resetting the stream with why.
    func request(_ stream: StreamID, target: String?, from asker: TunnelDriver) -> TunnelStreamDelegate? {
        let askerName = asker.peerSite
        let shownTarget = target.map(WireText.escaped) ?? "-"
        guard enabled else {
            return refuse(stream, on: asker, .relayNotOffered, "this site does not relay", target: shownTarget)
        }
        guard asker.relayedLinks == 0 else {
            return refuse(
                stream, on: asker, .relayLoop, "your tunnel to this relay is relayed itself", target: shownTarget)
        }
        let onward = target.flatMap { tunnel($0) }
        let reachable = onward.map { $0.establishedLinks > $0.relayedLinks && $0.relayedLinks == 0 } ?? false
        let decision = book.withLockedValue {
            $0.admit(asker: askerName, target: target, own: siteName, targetReachable: reachable)
        }
        guard case .admit = decision, let onward, let target else {
            if case .refuse(let code, let reason) = decision {
                return refuse(stream, on: asker, code, reason, target: shownTarget)
            }
            return refuse(stream, on: asker, .relayNoPath, "no direct tunnel to that site", target: shownTarget)
        }
        let pair = RelayAdmission.Pair(askerName, target)
        let counter = Counter(label: "weft_relay_bytes_total", dimensions: [("pair", pair.description)])
        Counter(label: "weft_relay_links_total", dimensions: [("pair", pair.description)]).increment()
        logger.info("relaying a link", metadata: ["from": "\(askerName)", "to": "\(shownTarget)"])
        let book = self.book
        let logger = self.logger
        return RelaySplice.join(
            stream, from: asker, to: onward,
            carried: { count in
                book.withLockedValue { $0.carried(count, between: askerName, and: target) }
                counter.increment(by: count)
            },
            ended: {
                book.withLockedValue { $0.release(askerName, target) }
                logger.info("relayed link ended", metadata: ["from": "\(askerName)", "to": "\(shownTarget)"])
            })
    }

    private func refuse(
        _ stream: StreamID, on asker: TunnelDriver, _ code: StreamReset.Code, _ reason: String, target: String
    ) -> TunnelStreamDelegate? {
        asker.reset(stream, code: code, message: reason)
        Counter(label: "weft_relay_refused_total", dimensions: [("reason", "\(code)")]).increment()
        // Once per asker and code every 10 s: a member repeating a refused request cannot flood the log.
        let (allowed, suppressed) = refusals.admit("\(asker.peerSite) \(code.rawValue)")
        if allowed {
            logger.warning(
                "refused to relay a link",
                metadata: [
                    "from": "\(asker.peerSite)", "to": "\(target)", "code": "\(code)", "reason": "\(reason)",
                    "alsoRefusedSinceLastLine": "\(suppressed)",
                ])
        }
        return nil
    }
}
