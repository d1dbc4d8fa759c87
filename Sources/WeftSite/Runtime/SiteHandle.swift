import NIOConcurrencyHelpers

/// Where services that come with the site (the API, the reload on SIGHUP) find it: the site
/// publishes its runtime here once its sockets are open, and withdraws it when it stops.
public final class SiteHandle: Sendable {
    private let box = NIOLockedValueBox<SiteRuntime?>(nil)

    public init() {}

    /// The running site, or nil before it started and after it stopped.
    public var runtime: SiteRuntime? { box.withLockedValue { $0 } }

    func publish(_ runtime: SiteRuntime?) {
        box.withLockedValue { $0 = runtime }
    }
}
