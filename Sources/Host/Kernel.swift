import Foundation

/// The kernel's parts, wired to one store: what the REST routes and the
/// transports call. Nothing here knows HTTP.
public struct Kernel: Sendable {
    public let store: any EventStore
    public let hub: StreamHub
    public let auth: AuthChain
    public let resolver: ResourceResolver
    public let threads: Threads
    public let canvases: Canvases
    public let streams: StreamReader
    public let artifacts: Artifacts
    public let gestures: Gestures
    /// The transport connections each user holds, capped.
    public let userConnections: UserConnections
    /// The REST requests each user and tenant has in progress, capped the
    /// same way: each holds a connection until its answer is on the wire.
    public let userRequests: UserConnections
    /// The writes, and the REST reads, each user and tenant may make per second.
    public let writeRates: RequestRates
    public let readRates: RequestRates
    /// The WebSocket messages each user and tenant may send per second; past them, a socket is read slower.
    public let messageRates: RequestRates

    public init(store: any EventStore, hub: StreamHub, auth: AuthChain, commandLimits: CommandLimits = CommandLimits(),
                artifacts: Artifacts = Artifacts(backend: nil, maxBytes: 0), gestureLimits: GestureLimits = GestureLimits(),
                maxConnectionsPerUser: Int = ConnectionLimits().maxPerUser,
                maxConnectionsPerTenant: Int = ConnectionLimits().maxPerTenant,
                maxRequestsPerUser: Int = ConnectionLimits().maxRequestsPerUser,
                maxRequestsPerTenant: Int = ConnectionLimits().maxRequestsPerTenant, writeRates: RequestRates = RequestRates(.writes, .writes),
                readRates: RequestRates = RequestRates(.reads, .reads),
                messageRates: RequestRates = RequestRates(.webSocketMessages, .webSocketMessages)) {
        self.store = store
        self.hub = hub
        self.auth = auth
        resolver = ResourceResolver(store: store)
        threads = Threads(store: store, resolver: resolver)
        canvases = Canvases(store: store, resolver: resolver, limits: commandLimits)
        streams = StreamReader(store: store, resolver: resolver)
        self.artifacts = artifacts
        gestures = Gestures(store: store, resolver: resolver, limits: gestureLimits)
        userConnections = UserConnections(limit: maxConnectionsPerUser, tenantLimit: maxConnectionsPerTenant)
        userRequests = UserConnections(limit: maxRequestsPerUser, tenantLimit: maxRequestsPerTenant)
        self.writeRates = writeRates
        self.readRates = readRates
        self.messageRates = messageRates
    }
}
