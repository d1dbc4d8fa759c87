import NIOCore
import WeftTransport

/// How a client's wait for a tunnel ended.
public enum TunnelWait: Sendable {
    /// The tunnel has a link.
    case ready(TunnelDriver)
    /// There is no path to the site (`NoPathWatch`): the reason, for the log.
    case refused(String)
    /// No link came in time, the site stopped, or the wait was cancelled.
    case over

    var driver: TunnelDriver? {
        if case .ready(let driver) = self { return driver }
        return nil
    }
}

/// Clients of a remote app wait here for a tunnel with a link: woken by the driver's link event
/// (`linksChanged`), by the time they gave, by their cancellation, by the site stopping, or
/// refused once the site is known to have no path to the peer.
extension TunnelManager {
    /// The tunnel to `site` once it has a link, waiting up to `timeout` for one (woken by the
    /// link, not polling); nil if none came, the site stopped or the task was cancelled.
    public func tunnel(to site: String, within timeout: Duration) async -> TunnelDriver? {
        await waitForTunnel(to: site, within: timeout).driver
    }

    /// The tunnel to `site` once it has a link, as `tunnel(to:within:)`; refused at once (or as
    /// soon as it is known) when there is no path to `site`.
    public func waitForTunnel(to site: String, within timeout: Duration) async -> TunnelWait {
        let id = state.withLockedValue { state in
            state.waiters.last &+= 1
            state.waiters.open.insert(state.waiters.last)
            return state.waiters.last
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<TunnelWait, Never>) in
                let ready = state.withLockedValue { state -> TunnelWait? in
                    guard state.waiters.open.contains(id), !state.planner.stopped else {
                        state.waiters.open.remove(id)
                        return .over
                    }
                    if let tunnel = state.tunnels[site], tunnel.links > 0 {
                        state.waiters.open.remove(id)
                        return .ready(tunnel.driver)
                    }
                    if let reason = state.noPath.reason(for: site) {
                        state.waiters.open.remove(id)
                        return .refused(reason)
                    }
                    state.waiters.byPeer[site, default: [:]][id] = Waiters.Waiter(continuation: continuation)
                    return nil
                }
                if let ready {
                    continuation.resume(returning: ready)
                    return
                }
                let timer = eventLoop(for: site).scheduleTask(in: TimeAmount(timeout)) { self.endWait(id, for: site) }
                // Kept with the waiter so a wake-up cancels it; a wait already over cancels it now.
                let over = state.withLockedValue { state -> Bool in
                    guard state.waiters.byPeer[site]?[id] != nil else { return true }
                    state.waiters.byPeer[site]?[id]?.timeout = timer
                    return false
                }
                if over { timer.cancel() }
            }
        } onCancel: {
            self.endWait(id, for: site)
        }
    }

    /// A wait timed out or was cancelled: it ends with nothing (unless it already ended).
    func endWait(_ id: UInt64, for site: String) {
        let waiter = state.withLockedValue { state -> Waiters.Waiter? in
            state.waiters.open.remove(id)
            return state.waiters.byPeer[site]?.removeValue(forKey: id)
        }
        waiter?.end(with: .over)
    }
}
