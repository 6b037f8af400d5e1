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
