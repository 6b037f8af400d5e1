import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// One running Northstar node: the composition root that owns the config,
/// the plugins and the kernel's parts, and runs the HTTP listener.
///
/// Start-up order matters and is the same every time: config, plugins
/// (loaded, checked, initialised), data directory, plugins started, then the
/// port. Anything refused before the port is bound ends the process with a
/// non-zero exit and the reason.
public final class Node: Sendable {
    public let config: NorthstarConfig
    public let plugins: PluginSet
    public let kernel: Kernel
    public let metrics: Metrics
    /// Makes the spans when `tracing` is configured.
    let tracer: NodeTracer?
    /// On a cluster (`store.backend: postgres`): live delivery from the shared log.
    let follower: LogFollower?
    /// On a cluster: this node's row among the cluster's nodes.
    let presence: ClusterPresence?
    public let readiness = Readiness()
    /// The WebSockets open now: counted for /metrics, closed when draining.
    let liveSockets = LiveWebSockets()
    /// Transport exchanges not finished yet: ended by the host at the drain deadline.
    let openExchanges = OpenExchanges()
    /// For the console: when the node started, its busiest streams, its recent errors.
    let startedAt = Date()
    let streamRates = StreamRates()
    let recentErrors = RecentErrors()
    /// The listener's connections, counted against `limits.max_connections`.
    let connections: ConnectionCount
    /// `limits.connections`, with `max_connections` fitted under the open-file limit.
    let connectionLimits: ConnectionLimits
    private let logger = Logger(label: "northstar")

    /// What waits in each streaming connection's queue: SSE and other
    /// transport responses under way, and WebSockets.
    private static func queuedBytes(_ exchanges: OpenExchanges, _ sockets: LiveWebSockets) -> [Int] {
        exchanges.unfinished.map(\.sink.queuedBytes) + sockets.connectionSinks.map(\.queuedBytes)
    }

    /// Loads and initialises every plugin of `config` and opens the store;
    /// starts nothing and binds nothing.
    public init(config: NorthstarConfig) throws {
        self.config = config
        do {
            try FileManager.default.createDirectory(atPath: config.dataDirectory, withIntermediateDirectories: true)
        } catch {
            throw StoreOpenError(path: config.dataDirectory, reason: "the data directory cannot be created")
        }
        // Before the plugins: they may write into it (the jwt dev secret), and
        // an unwritable folder should be named as such, not as a plugin's failure.
        try Self.checkWritable(directory: config.dataDirectory)
        self.plugins = try PluginSet(config: config)
        connectionLimits = OpenFileLimit.fitting(config.limits.connections, logger: logger)
        let metrics = Metrics()
        connections = ConnectionCount(maxConnections: connectionLimits.maxConnections,
                                      maxPendingPerAddress: connectionLimits.maxPendingPerAddress,
                                      onEviction: { phase in
                                          metrics.increment("northstar_connections_evicted_total", [("phase", phase.rawValue)])
                                      })
        let sockets = liveSockets
        let exchanges = openExchanges
        let connectionCount = connections
        let hub = StreamHub(metrics: metrics)
        metrics.addGauges([
            ("northstar_live_subscribers", "Subscribers receiving live events now.", { Double(hub.totalSubscribers) }),
            ("northstar_streams_with_subscribers", "Streams with at least one live subscriber.", { Double(hub.streamsWithSubscribers) }),
            ("northstar_connections_open", "HTTP connections open now, over every transport.", { Double(connectionCount.open) }),
            ("northstar_websockets_open", "WebSockets accepted and not yet closed.", { Double(sockets.count) }),
            ("northstar_transport_exchanges_open", "Requests on transport routes not finished yet.", { Double(exchanges.unfinished.count) }),
            ("northstar_connection_queued_bytes_max", "The most bytes framed and waiting for one streaming connection's socket now.",
             { Double(Self.queuedBytes(exchanges, sockets).max() ?? 0) }),
            ("northstar_connections_queued_bytes", "Bytes framed and waiting for the sockets of every streaming connection now.",
             { Double(Self.queuedBytes(exchanges, sockets).reduce(0, +)) }),
            ("northstar_connections_queueing", "Streaming connections with bytes waiting for their socket now (slow readers).",
             { Double(Self.queuedBytes(exchanges, sockets).filter { $0 > 0 }.count) }),
        ])
        self.metrics = metrics
        tracer = config.tracing.map { settings in
            NodeTracer(exporter: OTLPExporter(endpoint: settings.endpoint, serviceName: settings.serviceName, maxQueue: settings.maxQueue,
                                              flushInterval: .milliseconds(settings.flushMilliseconds), metrics: metrics),
                       sampleRatio: settings.sampleRatio)
        }
        let rates = streamRates
        let onCommit: @Sendable (CommitTimings) -> Void = { timings in
            metrics.record("northstar_commit_duration_seconds", duration: timings.transaction)
            metrics.record("northstar_commit_fsync_duration_seconds", duration: timings.commit)
            metrics.record("northstar_commit_batch_size", value: Double(timings.writes))
        }
        let store: any EventStore
        if let postgres = config.store.postgres {
            // A cluster: every node's hub is fed from the shared log by its follower.
            let shared = PostgresStore(address: try PostgresAddress(url: postgres.url), poolSize: postgres.poolSize,
                                       retainPerStream: config.store.retainEventsPerStream,
                                       logger: Logger(label: "northstar.store"), onAppend: { event in
                                           metrics.increment("northstar_events_appended_total", [("type", event.type)])
                                           rates.record(event.stream)
                                       }, onCommit: onCommit)
            follower = LogFollower(store: shared, hub: hub, logger: Logger(label: "northstar.store"))
            presence = ClusterPresence(store: shared, startedAt: startedAt)
            store = shared
        } else {
            let path = config.store.sqlitePath.hasPrefix("/") ? config.store.sqlitePath
                : "\(config.dataDirectory)/\(config.store.sqlitePath)"
            follower = nil
            presence = nil
            store = try SQLiteStore.openWritable(path: path, retainPerStream: config.store.retainEventsPerStream, onAppend: { event in
                metrics.increment("northstar_events_appended_total", [("type", event.type)])
                rates.record(event.stream)
                hub.publish(event)
            }, onCommit: onCommit)
        }
        let auth = AuthChain(providers: plugins.authChain(config.auth.chain), env: config.env, anonymous: config.auth.anonymous,
                             expiryLeeway: TimeInterval(config.auth.expiryLeewaySeconds), cache: config.auth.cache,
                             failuresPerSecond: config.limits.authFailuresPerSecond, metrics: metrics)
        let storage = try plugins.storagePlugin(named: config.storage.backend, source: config.source).map {
            StorageBackend(plugin: $0, timeout: .milliseconds(config.storage.timeoutMilliseconds), metrics: metrics)
        }
        kernel = Kernel(store: store, hub: hub, auth: auth, commandLimits: config.limits.commands,
                        artifacts: Artifacts(backend: storage, maxBytes: config.limits.maxObjectBytes),
                        gestureLimits: config.limits.gestures, maxConnectionsPerUser: config.limits.connections.maxPerUser,
                        maxConnectionsPerTenant: config.limits.connections.maxPerTenant,
                        maxRequestsPerUser: config.limits.connections.maxRequestsPerUser,
                        maxRequestsPerTenant: config.limits.connections.maxRequestsPerTenant,
                        writeRates: RequestRates(.writes, config.limits.writes, metrics: metrics),
                        readRates: RequestRates(.reads, config.limits.reads, metrics: metrics),
                        messageRates: RequestRates(.webSocketMessages, config.limits.webSocketMessages, metrics: metrics))
        // Host services act on this kernel from now on (transports subscribe and post through it).
        for plugin in plugins.plugins { plugin.library.handle.kernel = kernel }
        let userConnections = kernel.userConnections
        let userRequests = kernel.userRequests
        metrics.addGauges([
            ("northstar_store_reads_waiting", "Store reads waiting for their turn now (reads take turns between tenants).",
             { Double(store.readsWaiting) }),
            ("northstar_user_connections", "Transport connections holding a principal now, every user's together.",
             { Double(userConnections.total) }),
            ("northstar_users_connected", "Users holding at least one transport connection now.", { Double(userConnections.users) }),
            ("northstar_tenants_connected", "Tenants holding at least one transport connection now.", { Double(userConnections.tenants) }),
            ("northstar_user_requests_in_progress", "REST requests counted for their users now, from authentication until answered.",
             { Double(userRequests.total) }),
        ])
    }

    /// The data directory must take files (generated secrets, the database's
    /// journal): checked by writing one, so a read-only mount is named at start.
    private static func checkWritable(directory: String) throws {
        let probe = "\(directory)/.write-check-\(getpid())"
        guard FileManager.default.createFile(atPath: probe, contents: Data("ok".utf8)) else {
            throw StoreOpenError(path: directory, reason: "the data directory is not writable")
        }
        try? FileManager.default.removeItem(atPath: probe)
    }

    /// Starts the plugins, binds the port, serves until SIGTERM or SIGINT,
    /// then drains connections and stops the plugins in reverse order.
    /// - Parameter onListening: called with the bound port (useful with port 0).
    public func run(onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        // The cluster's schema first: a database that is out of reach or newer stops the node here.
        if let follower {
            try await follower.store.migrate()
            logger.notice("store", metadata: ["backend": "postgres", "database": "\(follower.store.address.redacted)"])
        }
        // Plugins may block in start and stop: never on the async executor,
        // whose few threads the host's own completions need.
        let plugins = self.plugins
        try await NIOThreadPool.singleton.runIfActive { try plugins.start() }
        let router = Router(context: NorthstarRequestContext.self)
        let allowed = AllowedMethods()
        if !config.allowedOrigins.isEmpty {
            router.add(middleware: CORSMiddleware(allowedOrigins: Set(config.allowedOrigins)))
        }
        router.add(middleware: ErrorMiddleware(metrics: metrics, allowed: allowed, recentErrors: recentErrors,
                                               tenantLabels: config.metrics.perTenant ? TenantLabels(capacity: config.metrics.maxTenants) : nil,
                                               tracer: tracer))
        HealthRoutes(readiness: readiness, metrics: metrics, storeHealth: kernel.store.health, adminToken: config.adminToken)
            .register(on: router)
        let api = APIRoutes(kernel: kernel, maxBodyBytes: config.limits.maxBodyBytes,
                            bodies: BodyBudget(limit: config.limits.maxBodyBytesInFlight))
        ThreadRoutes(api: api).register(on: router)
        CanvasRoutes(api: api).register(on: router)
        ArtifactRoutes(api: api, artifacts: kernel.artifacts).register(on: router)
        GestureRoutes(api: api).register(on: router)
        ConsoleRoutes(api: api, status: { [self] in await consoleStatus() }).register(on: router)
        if let directory = config.clientDirectory { ClientRoutes(directory: directory).register(on: router, logger: logger) }
        // Routes the transport plugins mounted while they started.
        var bridges: [TransportBridge] = []
        for plugin in plugins.plugins where plugin.kind == .transport {
            for route in plugin.library.handle.routes {
                let bridge = TransportBridge(plugin: plugin, route: route, limits: config.limits.transports,
                                             openExchanges: openExchanges)
                bridges.append(bridge)
                router.on(RouterPath(route.routerPath), method: route.method) { request, context in
                    try await bridge.respond(to: request, context: context)
                }
                logger.info("route mounted", metadata: ["plugin": "\(plugin.name)", "route": "\(route.method) \(route.pattern)"])
            }
        }
        allowed.record(router.routes.map { (path: $0.path.description, method: $0.method.rawValue) })
        let upgrade = WebSocketUpgrade(bridges: bridges, live: liveSockets)
        let server = NorthstarServerChannel.builder(upgrade: upgrade, limits: config.limits.transports,
                                                    connectionLimits: connectionLimits, connections: connections)

        let readiness = self.readiness
        let logger = self.logger
        let app = Application(
            router: router,
            server: server,
            configuration: .init(address: .hostname(config.listen.host, port: config.listen.port),
                                 serverName: "northstar"),
            onServerRunning: { [presence, config] channel in
                let port = channel.localAddress?.port ?? 0
                presence?.listening(host: config.listen.host, port: port)
                readiness.set(.ready)
                logger.notice("listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")",
                                                      "port": "\(port)"])
                onListening(port)
            },
            logger: logger
        )
        // Listed first, so it stops last and sends the spans of the drain too.
        let tracing: [ServiceGroupConfiguration.ServiceConfiguration] = tracer.map { [.init(service: TraceExportService(exporter: $0.exporter))] } ?? []
        var following: [ServiceGroupConfiguration.ServiceConfiguration] = follower.map { [.init(service: LogFollowerService(follower: $0))] } ?? []
        if let presence {
            following.append(.init(service: ClusterPresenceService(presence: presence, readiness: readiness)))
        }
        var groupConfiguration = ServiceGroupConfiguration(
            services: tracing + following + [
                .init(service: PluginService(plugins: plugins, readiness: readiness)),
                .init(service: app),
                .init(service: StoreRecoveryService(store: kernel.store)),
                .init(service: DrainSignalService(readiness: readiness, hub: kernel.hub, sockets: liveSockets,
                                                  exchanges: openExchanges, servingTime: .seconds(config.drainSeconds),
                                                  deadline: .seconds(config.drainDeadlineSeconds), logger: logger)),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        // A safety net: whatever still runs after this is cancelled.
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(config.drainSeconds + config.drainDeadlineSeconds + 20)
        try await ServiceGroup(configuration: groupConfiguration).run()
        logger.notice("stopped")
    }
}

/// Keeps the plugins running while the node serves, and stops them (in
/// reverse start order) after the listener has drained.
struct PluginService: Service {
    let plugins: PluginSet
    let readiness: Readiness

    func run() async throws {
        // Graceful shutdown reaches services in reverse order: the listener
        // drains first, then this returns and the plugins stop.
        try? await gracefulShutdown()
        let plugins = self.plugins
        try? await NIOThreadPool.singleton.runIfActive { plugins.stop() }
    }
}

/// Listed last, so the shutdown signal reaches it first, and the listener
/// closes only once this returns. A drain for rolling deploys:
/// 1. `/readyz` turns 503 while the node still serves everything (streams
///    included) for `servingTime`, so a load balancer stops sending new
///    requests before any connection is refused;
/// 2. live streams end with where to resume (SSE `stream.end`, WS 1001), so
///    their long-lived responses let the listener drain, and clients
///    reconnect to another node with their last seq;
/// 3. transport requests still open `deadline` later are ended by the host,
///    so a plugin that never ends one cannot keep the node from stopping.
struct DrainSignalService: Service {
    let readiness: Readiness
    let hub: StreamHub
    let sockets: LiveWebSockets
    let exchanges: OpenExchanges
    let servingTime: Duration
    let deadline: Duration
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        readiness.set(.draining)
        if servingTime > .zero {
            logger.notice("draining: /readyz answers 503; still serving until the listener closes",
                          metadata: ["seconds": "\(servingTime.components.seconds)"])
            try? await Task.sleep(for: servingTime)
        }
        let deadline = ContinuousClock.now + self.deadline
        logger.notice("closing: live streams end with where to resume; open requests have until the deadline",
                      metadata: ["deadline_seconds": "\(self.deadline.components.seconds)"])
        hub.shutdown()
        sockets.closeAll(reason: "the server is restarting; reconnect and resume from your last seq")
        // Returning lets the listener quiesce, which would close what is still
        // open with a plain 1000: give the 1001 close handshakes a moment first.
        let closeDeadline = min(deadline, ContinuousClock.now + .seconds(3))
        while sockets.count > 0, ContinuousClock.now < closeDeadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        await exchanges.drain(until: deadline, logger: logger)
    }
}

/// While the store refuses writes (a full disk, a read-only mount), tries one
/// small write every two seconds, so `/readyz` turns ready again on its own
/// once the operator has fixed the cause.
struct StoreRecoveryService: Service {
    let store: any EventStore

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(2))
                if store.health.current != nil { try? await store.probeWrite() }
            }
        }
    }
}
