import Logging
import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#endif

/// How many sockets the site's streams may hold at once — clients accepted on remote apps'
/// local sockets and connections made to exposed apps, together — so that a flood of clients or
/// of peer streams runs into a refusal, never into `EMFILE` for the links, the broker or the API.
///
/// The limit comes from the process's open-files limit (its soft limit raised to the hard one
/// at start) less a reserve kept for everything else.
public final class SocketBudget: Sendable {
    public let limit: Int
    private let inUse = NIOLockedValueBox(0)

    public init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// One more socket, if the budget has room.
    public func acquire() -> Bool {
        inUse.withLockedValue { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    public func release() {
        inUse.withLockedValue { $0 = max(0, $0 - 1) }
    }

    /// Sockets held now.
    public var held: Int { inUse.withLockedValue { $0 } }

    /// Descriptors kept for links, listeners, the broker, the API, event loops and files: a
    /// quarter of the limit, at least 64 (what a site uses before any stream) and at most 512.
    public static func reserve(forLimit limit: Int) -> Int { min(512, max(64, limit / 4)) }

    /// Raises the soft open-files limit to the hard one and sizes a budget from it.
    public static func fromProcessLimit(logger: Logger) -> SocketBudget {
        var limits = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits) == 0 else {
            logger.warning("cannot read the open-files limit; stream sockets capped at 4096")
            return SocketBudget(limit: 4096)
        }
        if limits.rlim_cur < limits.rlim_max {
            var raised = limits
            raised.rlim_cur = min(limits.rlim_max, 1 << 20)
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limits = raised }
        }
        let soft = Int(clamping: limits.rlim_cur)
        let budget = SocketBudget(limit: soft - reserve(forLimit: soft))
        logger.info(
            "stream sockets capped", metadata: ["limit": "\(budget.limit)", "openFilesLimit": "\(soft)"])
        return budget
    }
}
