import Foundation
import Logging

/// The process's open-file limit, raised to its hard ceiling at start, and
/// the connection limit fitted under it: a node that accepts until `accept`
/// fails with EMFILE can no longer open its database, answer `/healthz` or
/// call a plugin, so it stops accepting well before.
enum OpenFileLimit {
    /// Descriptors kept back for the store, plugins, outbound calls and logs.
    static func reserve(for limit: Int) -> Int { min(256, max(16, limit / 4)) }

    /// `limits` with `maxConnections` at most the open-file limit less the reserve.
    static func fitting(_ limits: ConnectionLimits, logger: Logger) -> ConnectionLimits {
        var fitted = limits
        let available = raise()
        let ceiling = max(1, available - reserve(for: available))
        if fitted.maxConnections > ceiling {
            logger.warning("max_connections lowered to fit the open-file limit",
                           metadata: ["configured": "\(limits.maxConnections)", "used": "\(ceiling)",
                                      "open_file_limit": "\(available)"])
            fitted.maxConnections = ceiling
        }
        return fitted
    }

    /// Raises the soft limit to the hard one; returns the soft limit in force.
    private static func raise() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return Int(clamping: limit.rlim_cur)
    }
}
