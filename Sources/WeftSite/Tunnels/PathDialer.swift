import Logging
import NIOConcurrencyHelpers
import NIOCore
import WeftTransport
import WeftTunnel

/// One dial run (see `DialPlanner`): dials its path, holds the link until it closes, waits a
/// backoff (cut short by a kick) and dials again, until the manager no longer has a target for
/// it. Its only state is the link it holds and its wake-up; the decisions are the planner's.
final class PathDialer: Sendable {
    /// What the run needs from its manager: a target, and whether a link is still wanted.
    struct Job {
        var driver: TunnelDriver
        var target: LinkDialer.Target
        var transport: any LinkTransport
        var linkNumber: UInt32
    }

    let peer: String
    let path: LinkPath
    let run: UInt64
    private let wakeup = Wakeup()
    private let link = NIOLockedValueBox<(stopped: Bool, channel: Channel?)>((false, nil))

    init(peer: String, path: LinkPath, run: UInt64) {
        self.peer = peer
        self.path = path
        self.run = run
    }

    /// Dial now if waiting out a backoff (or skip the next backoff).
    func kick() {
        wakeup.signal()
    }

    /// The path left the plan: its link closes and the run ends at its next step.
    func stop() {
        let channel = link.withLockedValue { link -> Channel? in
            link.stopped = true
            defer { link.channel = nil }
            return link.channel
        }
        channel?.close(promise: nil)
        wakeup.signal()
    }

    /// Keeps a link that finished its handshake; false (and the caller closes it) once stopped.
    private func hold(_ channel: Channel) -> Bool {
        link.withLockedValue { link in
            guard !link.stopped else { return false }
            link.channel = channel
            return true
        }
    }

    /// Whether `stop()` was called (a stop's wake-up may have been cleared by `reset()`).
    private var stopped: Bool { link.withLockedValue { $0.stopped } }

    private func release(_ channel: Channel) {
        link.withLockedValue { link in
            if link.channel === channel { link.channel = nil }
        }
    }

    /// A relayed path dials only once the tunnel has had no direct link for this long (direct
    /// paths are dialed first), and its link closes once a direct one has been up this long.
    static let relayDelay: Duration = .seconds(3)
    static let relayGrace: Duration = .seconds(10)

    private static func hasDirectLink(_ driver: TunnelDriver) -> Bool {
        driver.establishedLinks > driver.relayedLinks
    }

    /// Waits until the tunnel has gone `relayDelay` without a direct link (true), or the run is
    /// stopped or its tunnel replaced (false).
    private func relayNeeded(_ driver: TunnelDriver, manager: TunnelManager) async -> Bool {
        var missingSince: ContinuousClock.Instant?
        while !stopped, manager.isCurrent(driver, for: self) {
            if Self.hasDirectLink(driver) {
                missingSince = nil
            } else {
                let since = missingSince ?? .now
                missingSince = since
                if ContinuousClock.now - since >= Self.relayDelay { return true }
            }
            await wakeup.wait(upTo: .seconds(1), on: driver.eventLoop)
            wakeup.reset()
        }
        return false
    }

    /// Holds a relayed link until it closes, or closes it once a direct link has been up for
    /// `relayGrace` (sites prefer direct links; the run dials again if they all fail).
    private func holdRelayed(_ channel: Channel, driver: TunnelDriver, logger: Logger) async {
        let closed = NIOLockedValueBox(false)
        let wakeup = self.wakeup
        channel.closeFuture.whenComplete { _ in
            closed.withLockedValue { $0 = true }
            wakeup.signal()
        }
        var directSince: ContinuousClock.Instant?
        while !closed.withLockedValue({ $0 }) {
            if Self.hasDirectLink(driver) {
                let since = directSince ?? .now
                directSince = since
                if ContinuousClock.now - since >= Self.relayGrace {
                    logger.info("closing a relayed link: a direct link is up")
                    channel.close(promise: nil)
                    try? await channel.closeFuture.get()
                    return
                }
            } else {
                directSince = nil
            }
            await wakeup.wait(upTo: .seconds(1), on: driver.eventLoop)
        }
    }

    /// The run's life; returns when the manager gives no more targets.
    func run(manager: TunnelManager, backoff initial: Backoff, logger: Logger) async {
        var logger = logger
        logger[metadataKey: "peer"] = "\(peer)"
        logger[metadataKey: "path"] = "\(path)"
        var backoff = initial
        var failures = 0
        let relayed = path.remote.transport == .relay
        dialing: while let job = manager.nextDial(for: self) {
            // A kick before this dial is answered by this dial.
            wakeup.reset()
            if relayed, !(await relayNeeded(job.driver, manager: manager)) {
                if stopped { return }
                continue dialing
            }
            let started = ContinuousClock.now
            let held = NIOLockedValueBox<Channel?>(nil)
            let driver = job.driver
            do {
                let transport = job.transport
                _ = try await LinkDialer.dial(
                    job.target, over: transport, on: driver.eventLoop, site: manager.site, linkNumber: job.linkNumber,
                    stillWanted: { manager.isCurrent(driver, for: self) }
                ) { channel, established in
                    guard manager.linkDialed(established, driver: driver, for: self), self.hold(channel) else {
                        channel.close(promise: nil)
                        return
                    }
                    held.withLockedValue { $0 = channel }
                    driver.attach(
                        channel, leftover: established.leftover, transport: transport.kind, backup: established.backup,
                        peerCapabilities: established.peerCapabilities, remote: job.target.endpoint)
                }.get()
                if let channel = held.withLockedValue({ $0 }) {
                    failures = 0
                    logger.info("link dialed", metadata: ["link": "\(job.linkNumber)"])
                    if relayed {
                        await holdRelayed(channel, driver: driver, logger: logger)
                    } else {
                        try? await channel.closeFuture.get()
                    }
                    release(channel)
                    if ContinuousClock.now - started >= .seconds(10) { backoff.reset() }
                }
            } catch {
                if let refusal = (error as? LinkError)?.refusal, refusal.reason == .unknownTunnel {
                    manager.tunnelUnknownAtPeer(driver, reason: refusal.message)
                }
                failures += 1
                if failures == 1 {
                    logger.warning("cannot dial a link; retrying with backoff", metadata: ["error": "\(error)"])
                } else {
                    logger.debug("cannot dial a link", metadata: ["error": "\(error)", "attempt": "\(failures)"])
                }
            }
            // A stop that came while this run dialed ends it now, not after the backoff: its
            // wake-up may have been cleared above. One that comes after this check wakes the wait.
            if stopped { return }
            await wakeup.wait(upTo: backoff.next(), on: driver.eventLoop)
        }
    }
}
