import NIOConcurrencyHelpers

/// The transport connections each user holds on this node, capped by
/// `limits.max_connections_per_user`.
///
/// Every SSE stream, WebSocket and long poll holds one principal from its
/// `authenticate` until the transport releases it, so counting principals
/// by identity counts a user's connections. Without a cap, one user's token
/// (an end user's, handed to a browser) could open `max_connections`
/// streams and lock every other tenant out of the node. The count is per
/// node: behind a proxy, a user may hold the cap on each node.
///
/// THREAD: any.
public final class UserConnections: Sendable {
    public let limit: Int
    private let held = NIOLockedValueBox<[UserIdentity: Int]>([:])

    public init(limit: Int) {
        self.limit = limit
    }

    /// Counts one more connection for the context's user; false, and
    /// nothing counted, when the user holds `limit` already.
    func claim(_ context: RequestContext) -> Bool {
        let identity = UserIdentity(context)
        return held.withLockedValue { held in
            let count = held[identity, default: 0]
            guard count < limit else { return false }
            held[identity] = count + 1
            return true
        }
    }

    /// Gives back one connection claimed for the context's user.
    func release(_ context: RequestContext) {
        let identity = UserIdentity(context)
        held.withLockedValue { held in
            guard let count = held[identity] else { return }
            // An entry per user with a connection, none for a user without.
            held[identity] = count > 1 ? count - 1 : nil
        }
    }

    /// Connections the user of `context` holds now.
    func count(for context: RequestContext) -> Int {
        held.withLockedValue { $0[UserIdentity(context)] ?? 0 }
    }

    /// Users holding at least one connection now.
    var users: Int { held.withLockedValue { $0.count } }

    /// Connections counted now, every user's together.
    var total: Int { held.withLockedValue { $0.values.reduce(0, +) } }
}
