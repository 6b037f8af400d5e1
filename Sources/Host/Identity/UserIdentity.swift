/// One user, as the node counts what users hold and do: a user is named
/// within a tenant and an env, so the same user id in two tenants (or two
/// envs of one) is two users.
struct UserIdentity: Hashable, Sendable {
    let tenant: String
    let env: String
    let user: String

    init(_ context: RequestContext) {
        tenant = context.tenant.rawValue
        env = context.env
        user = context.userID
    }
}

/// Whose limit a request or connection met: its user's, or its tenant's
/// (all the tenant's users together). Named as it is on the wire (`limit`).
enum LimitHolder: String, Sendable { case user, tenant }
