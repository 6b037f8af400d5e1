import NIOConcurrencyHelpers

/// The transport connections each user, and each tenant, holds on this
/// node, capped by `limits.max_connections_per_user` and
/// `limits.max_connections_per_tenant`.
///
/// Every SSE stream, WebSocket and long poll holds one principal from its
/// `authenticate` until the transport releases it, so counting principals
/// by identity counts a user's connections. Without a cap, one user's token
/// (an end user's, handed to a browser) could open `max_connections`
/// streams and lock every other tenant out of the node; with the user's cap
/// alone, so could a tenant whose app mints tokens for many user ids
/// (anonymous visitors, say). The counts are per node: behind a proxy,
/// a user or tenant may hold its cap on each node.
///
/// The node keeps a second count of the same kind for REST requests in
/// progress (`Kernel.userRequests`, `limits.max_requests_in_progress_per_user`
/// and `..._per_tenant`): each holds a connection until it is answered.
///
/// THREAD: any.
public final class UserConnections: Sendable {
    public let limit: Int
    public let tenantLimit: Int
    private let held = NIOLockedValueBox(Held())

    private struct Held {
        // An entry per user (and tenant) with a connection, none for one without.
        var users: [UserIdentity: Int] = [:]
        var tenants: [String: Int] = [:]
    }

    /// How long a refusal at either cap waits before it is answered. A
    /// client that opens stream after stream whatever the answer (a hostile
    /// one, or a bug) would be refused thousands of times a second, each
    /// refusal a handshake's HTTP work that every tenant's requests wait
    /// behind; held, it asks about once a second per connection. A place
    /// comes back only when one of the user's (or tenant's) connections
    /// closes, so a sooner retry would succeed only by chance.
    static let refusalHold: Duration = .seconds(1)

    public init(limit: Int, tenantLimit: Int = ConnectionLimits().maxPerTenant) {
        self.limit = limit
        self.tenantLimit = tenantLimit
    }

    /// Counts one more connection for the context's user and tenant; nil
    /// when counted, or whose limit is reached (nothing counted then).
    func claim(_ context: RequestContext) -> LimitHolder? {
        let identity = UserIdentity(context)
        return held.withLockedValue { held in
            let count = held.users[identity, default: 0]
            guard count < limit else { return .user }
            let tenantCount = held.tenants[identity.tenant, default: 0]
            guard tenantCount < tenantLimit else { return .tenant }
            held.users[identity] = count + 1
            held.tenants[identity.tenant] = tenantCount + 1
            return nil
        }
    }

    /// Gives back one connection claimed for the context's user and tenant.
    func release(_ context: RequestContext) {
        let identity = UserIdentity(context)
        held.withLockedValue { held in
            guard let count = held.users[identity] else { return }
            held.users[identity] = count > 1 ? count - 1 : nil
            let tenantCount = held.tenants[identity.tenant, default: 1]
            held.tenants[identity.tenant] = tenantCount > 1 ? tenantCount - 1 : nil
        }
    }

    /// Connections the user of `context` holds now.
    func count(for context: RequestContext) -> Int {
        held.withLockedValue { $0.users[UserIdentity(context)] ?? 0 }
    }

    /// Connections the tenant of `context` holds now, all its users together.
    func tenantCount(for context: RequestContext) -> Int {
        held.withLockedValue { $0.tenants[context.tenant.rawValue] ?? 0 }
    }

    /// Users holding at least one connection now.
    var users: Int { held.withLockedValue { $0.users.count } }

    /// Tenants holding at least one connection now.
    var tenants: Int { held.withLockedValue { $0.tenants.count } }

    /// Connections counted now, every user's together.
    var total: Int { held.withLockedValue { $0.users.values.reduce(0, +) } }
}
