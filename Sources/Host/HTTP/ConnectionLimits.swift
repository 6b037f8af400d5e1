import NIOCore

/// What one connection may cost the node before it is answered and closed:
/// how many connections, how long each phase of a request may take, how
/// large a request head may be. Defaults are safe for a public port.
public struct ConnectionLimits: Sendable {
    /// Connections open at once; past it a new one gets 503 and is closed.
    /// Clamped at start to the open-file limit less a reserve for the store,
    /// plugins and outbound calls, so the node never runs out of descriptors.
    public var maxConnections: Int = 10_000
    /// Connections from one IP address that have not yet sent a complete
    /// request head. Connections that have (behind a proxy, all of them)
    /// do not count, so a proxy in front is never refused for this.
    public var maxPendingPerAddress: Int = 64
    /// Transport connections (SSE streams, WebSockets, long polls) one user
    /// holds at once on this node; past it, 429 `too_many_user_connections`. So
    /// one user's token cannot take every connection the node has.
    public var maxPerUser: Int = 256
    /// Transport connections one tenant holds at once on this node, all its
    /// users together; past it, 429 `too_many_tenant_connections`. So one
    /// tenant cannot take every connection the node has, however many user
    /// ids its app mints. Half the default `maxConnections`.
    public var maxPerTenant: Int = 5_000
    /// REST requests one user has in progress at once on this node, each
    /// counted from its authentication until its answer is on the wire; past
    /// it, 429 `too_many_user_requests`. A request in progress holds its
    /// connection busy (never closed to make room), and a client can keep
    /// one in progress for as long as it likes by sending its body or
    /// reading its answer slowly: so one user's token cannot take every
    /// connection the node has that way either.
    public var maxRequestsPerUser: Int = 128
    /// The same for one tenant, all its users together; past it, 429
    /// `too_many_tenant_requests`. A quarter of the default `maxConnections`.
    public var maxRequestsPerTenant: Int = 2_500
    /// From accepting a connection to its first complete request head.
    public var headerTimeout: TimeAmount = .seconds(10)
    /// Between two requests on a kept-alive connection.
    public var idleTimeout: TimeAmount = .seconds(60)
    /// The longest wait for the next part of a request body.
    public var bodyTimeout: TimeAmount = .seconds(30)
    /// The request line (`GET /path?query HTTP/1.1`); past it, 414.
    public var maxRequestLineBytes: Int = 8192
    /// The whole request head; past it, 431.
    public var maxHeaderBytes: Int = 32_768
    /// The largest body any route takes; a larger declared `Content-Length`
    /// is answered 413 before a byte of it is read.
    public var maxDeclaredBodyBytes: Int64 = 1 << 20

    public init() {}
}
