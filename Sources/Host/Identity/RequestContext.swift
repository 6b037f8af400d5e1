import Foundation

/// Who is asking, built only from claims an auth plugin verified.
///
/// Never from a header, a query parameter or a path: the only initialiser
/// outside this module is the auth chain's.
public struct RequestContext: Sendable {
    public let tenant: TenantID
    public let env: String
    public let userID: String
    public let scopes: Set<String>
    public let requestID: String
    /// The W3C `traceparent` of the request, or one the node started.
    public let traceparent: String
    /// When the credential stops being honoured (its `exp` plus the node's
    /// leeway); nil for a credential without one. Long-lived streams end then.
    public let expiresAt: Date?

    init(tenant: TenantID, env: String, userID: String, scopes: Set<String>, requestID: String, traceparent: String,
         expiresAt: Date? = nil) {
        self.tenant = tenant
        self.env = env
        self.userID = userID
        self.scopes = scopes
        self.requestID = requestID
        self.traceparent = traceparent
        self.expiresAt = expiresAt
    }

    /// Whether the credential behind this context has run out.
    public func isExpired(at now: Date = Date()) -> Bool {
        expiresAt.map { now >= $0 } ?? false
    }

    /// Whether `other` is the same identity (tenant, env, user): what a
    /// renewed credential must be to replace this one on an open connection.
    public func isSameIdentity(as other: RequestContext) -> Bool {
        tenant == other.tenant && env == other.env && userID == other.userID
    }

    /// Whether the context holds `scope`, directly or through the plain
    /// `read` / `write` scopes that cover every area.
    public func allows(_ access: Access, on area: Area) -> Bool {
        scopes.contains("\(area.rawValue):\(access.rawValue)") || scopes.contains(access.rawValue)
    }

    /// Read or write.
    public enum Access: String, Sendable { case read, write }
    /// What a scope covers.
    public enum Area: String, Sendable { case chat, canvas, artifacts }
}
