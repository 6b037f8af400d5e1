import Foundation
import Logging
import NIOCore

extension NorthstarConfig {
    /// The env names a node accepts: short, lowercase, no surprises in logs.
    nonisolated(unsafe) static let envPattern = /^[a-z][a-z0-9-]{0,31}$/

    /// Loads a config file, or the embedded dev default when `file` is nil.
    /// - Parameters:
    ///   - file: the JSON file to read, or nil for `Deploy/northstar.dev.json`.
    ///   - overrides: command-line and environment values that win over the file.
    ///   - environment: where `${NAME}` references are looked up.
    /// - Throws: `ConfigError` naming the file, the key path and the problem.
    public static func load(file: String?, overrides: Overrides = .init(),
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws -> NorthstarConfig {
        let source = file ?? "<embedded dev default>"
        let data: Data
        if let file {
            guard let contents = FileManager.default.contents(atPath: file) else {
                let reason = FileManager.default.fileExists(atPath: file) ? "cannot be read (permissions?)" : "no such file"
                throw ConfigError(file: file, path: "", message: reason)
            }
            data = contents
        } else {
            data = Data(DevDefaultConfig.text.utf8)
        }
        let document: JSONValue
        do {
            document = try JSONValue.parse(data)
        } catch {
            throw ConfigError(file: source, path: "", message: "not valid JSON: \(error)")
        }
        return try parse(document, source: source, overrides: overrides.applyingEnvironment(environment),
                         environment: environment)
    }

    static func parse(_ document: JSONValue, source: String, overrides: Overrides,
                      environment: [String: String]) throws -> NorthstarConfig {
        // The node section comes first: `${data_dir}` elsewhere depends on it.
        let plain: @Sendable (String, String) throws -> String = { text, path in
            try expandVariables(text, path: path, source: source, dataDirectory: nil, environment: environment)
        }
        var root = try ConfigReader(document, file: source, path: "", expand: plain)
        var node = try root.object("node") ?? ConfigReader(.object([:]), file: source, path: "node", expand: plain)

        let fileEnv = try node.string("env")
        let env = overrides.env ?? fileEnv ?? "dev"
        guard env.wholeMatch(of: envPattern) != nil else {
            throw node.error("env", "\"\(env)\" is not a valid env name (lowercase letters, digits, '-')")
        }
        let fileListen = try node.string("listen")
        let listenText = overrides.listen ?? fileListen ?? "127.0.0.1:8080"
        guard let listen = ListenAddress(listenText) else {
            throw node.error("listen", "\"\(listenText)\" is not HOST:PORT")
        }
        let fileDataDirectory = try node.string("data_dir")
        // Resolved once, here, before any plugin sees `${data_dir}`: plugins
        // get absolute paths whatever folder the node was started from.
        let dataDirectory = absolutePath(overrides.dataDirectory ?? fileDataDirectory ?? ".northstar")
        let pluginDirectory = try node.string("plugin_dir").map(absolutePath)
        let adminToken = try node.string("admin_token")
        if let adminToken, adminToken.utf8.count < 16 {
            throw node.error("admin_token", "at least 16 characters (it guards /metrics); put it in the environment: \"${NAME}\"")
        }
        let logFormatText = try node.string("log_format") ?? "text"
        guard let logFormat = NorthstarConfig.LogFormat(rawValue: logFormatText) else {
            throw node.error("log_format", "\"\(logFormatText)\" is not text or json")
        }
        var logLevels: [String: Logger.Level] = [:]
        if var levels = try node.object("log_levels") {
            for label in levels.keys {
                let text = try levels.string(label) ?? ""
                guard let level = Logger.Level(rawValue: text) else {
                    throw levels.error(label, "\"\(text)\" is not a level (trace, debug, info, notice, warning, error, critical)")
                }
                logLevels[label] = level
            }
            try levels.finish()
        }
        let drainSeconds = Int(try node.integer("drain_seconds", range: 0...600) ?? 0)
        let drainDeadlineSeconds = Int(try node.integer("drain_deadline_seconds", range: 1...300) ?? 10)
        let allowedOrigins = try node.stringArray("allowed_origins") ?? []
        for origin in allowedOrigins where !CORSMiddleware.isOrigin(origin) {
            throw node.error("allowed_origins", "\"\(origin.prefix(80))\" is not an origin: scheme and host, like \"https://app.example.com\" or \"http://localhost:3000\", with no path")
        }
        let clientDirectory = try node.string("client_dir").map(absolutePath)
        try node.finish()

        let expand: @Sendable (String, String) throws -> String = { text, path in
            try expandVariables(text, path: path, source: source, dataDirectory: dataDirectory, environment: environment)
        }
        root = try ConfigReader(document, file: source, path: "", expand: expand)
        _ = root.raw("node")

        var limitsReader = try root.object("limits") ?? ConfigReader(.object([:]), file: source, path: "limits", expand: expand)
        var storeReader = try root.object("store") ?? ConfigReader(.object([:]), file: source, path: "store", expand: expand)
        var store = StoreSettings(
            sqlitePath: try storeReader.string("sqlite_path") ?? "northstar.sqlite",
            retainEventsPerStream: try storeReader.integer("retain_events_per_stream", range: 0...Int64.max) ?? 0,
            snapshotEvery: try storeReader.integer("snapshot_every", range: 1...100_000) ?? 64
        )
        store.postgres = try parsePostgres(&storeReader)
        try storeReader.finish()

        let commands = CommandLimits(
            maxDocumentBytes: Int(try limitsReader.integer("max_document_bytes", range: 2...(1 << 30)) ?? 1 << 20),
            maxOperations: Int(try limitsReader.integer("max_operations_per_command", range: 1...100_000) ?? 1000),
            maxPathDepth: Int(try limitsReader.integer("max_path_depth", range: 1...1000) ?? 32),
            maxDocumentDepth: Int(try limitsReader.integer("max_document_depth", range: 1...Int64(CommandLimits.documentDepthCeiling)) ?? 64),
            snapshotEvery: store.snapshotEvery)
        let transports = WebSocketLimits(
            sendQueueBytes: Int(try limitsReader.integer("send_queue_bytes", range: 4096...(1 << 30)) ?? 256 << 10),
            maxMessageBytes: Int(try limitsReader.integer("ws_max_message_bytes", range: 128...(1 << 24)) ?? 1 << 16),
            pingIntervalSeconds: Int(try limitsReader.integer("ws_ping_interval_seconds", range: 1...3600) ?? 30),
            slowConsumerGraceSeconds: Int(try limitsReader.integer("slow_consumer_grace_seconds", range: 1...3600) ?? 60))
        var limits = Limits(maxBodyBytes: Int(try limitsReader.integer("max_body_bytes", range: 1...(1 << 30)) ?? 1 << 20),
                            commands: commands, transports: transports,
                            maxObjectBytes: UInt64(try limitsReader.integer("max_object_bytes", range: 1...(1 << 42)) ?? 100 << 20),
                            gestures: GestureLimits(
                                maxBatchSamples: Int(try limitsReader.integer("max_gesture_batch_samples", range: 1...100_000) ?? 1000),
                                maxSamples: Int(try limitsReader.integer("max_gesture_samples", range: 1...100_000_000) ?? 1_000_000),
                                maxDurationMs: Double(try limitsReader.integer("max_gesture_duration_ms", range: 1...86_400_000) ?? 3_600_000),
                                maxPointers: Int(try limitsReader.integer("max_gesture_pointers", range: 1...100_000) ?? 1000)))
        limits.maxBodyBytesInFlight = try limitsReader.integer("max_body_bytes_in_flight", range: 1...(1 << 40)).map { Int($0) }
            ?? limits.maxBodyBytesInFlight
        guard limits.maxBodyBytesInFlight >= limits.maxBodyBytes else {
            throw ConfigError(file: source, path: "limits.max_body_bytes_in_flight",
                              message: "\(limits.maxBodyBytesInFlight) is less than max_body_bytes (\(limits.maxBodyBytes)): no body of the largest size could ever be read")
        }
        limits.writes = try parseRates(&limitsReader, .writes, defaults: limits.writes)
        limits.reads = try parseRates(&limitsReader, .reads, defaults: limits.reads)
        limits.webSocketMessages = try parseRates(&limitsReader, .webSocketMessages, defaults: limits.webSocketMessages)
        limits.authFailuresPerSecond = Int(try limitsReader.integer("auth_failures_per_second", range: 0...1_000_000)
                                           ?? Int64(limits.authFailuresPerSecond))
        limits.connections = try parseConnectionLimits(&limitsReader, declaredBody: max(Int64(limits.maxBodyBytes), Int64(limits.maxObjectBytes)))
        try limitsReader.finish()

        var storageReader = try root.object("storage") ?? ConfigReader(.object([:]), file: source, path: "storage", expand: expand)
        let storage = StorageSettings(backend: try storageReader.string("backend"),
                                      timeoutMilliseconds: Int(try storageReader.integer("timeout_ms", range: 100...600_000) ?? 30_000))
        try storageReader.finish()

        let auth = try parseAuth(&root, env: env, source: source, expand: expand)
        var metrics = MetricsSettings()
        if var metricsReader = try root.object("metrics") {
            metrics.perTenant = try metricsReader.bool("per_tenant") ?? metrics.perTenant
            metrics.maxTenants = Int(try metricsReader.integer("max_tenants", range: 1...10_000) ?? Int64(metrics.maxTenants))
            try metricsReader.finish()
        }
        let tracing = try parseTracing(&root)
        let plugins = try parsePlugins(&root, source: source, expand: expand)
        try root.finish()

        var config = NorthstarConfig(env: env, listen: listen, dataDirectory: dataDirectory, pluginDirectory: pluginDirectory,
                                     adminToken: adminToken, limits: limits, store: store, storage: storage, auth: auth,
                                     plugins: plugins, source: source)
        config.drainSeconds = drainSeconds
        config.metrics = metrics
        config.tracing = tracing
        config.logFormat = logFormat
        config.logLevels = logLevels
        config.drainDeadlineSeconds = drainDeadlineSeconds
        config.allowedOrigins = allowedOrigins
        config.clientDirectory = clientDirectory
        return config
    }

    /// `store.backend`: `sqlite` (the default, one node) or `postgres` (a
    /// cluster), which needs `postgres_url`.
    private static func parsePostgres(_ reader: inout ConfigReader) throws -> StoreSettings.Postgres? {
        let backend = try reader.string("backend") ?? "sqlite"
        let url = try reader.string("postgres_url")
        let poolSize = Int(try reader.integer("pool_size", range: 1...1000) ?? 10)
        switch backend {
        case "sqlite":
            if url != nil { throw reader.error("postgres_url", "is for store.backend \"postgres\"; this store is sqlite") }
            return nil
        case "postgres":
            guard let url else {
                throw reader.error("postgres_url", "required with store.backend \"postgres\": postgres://user@host:port/database (put a password in the environment: \"${NAME}\")")
            }
            do {
                _ = try PostgresAddress(url: url)
            } catch {
                throw reader.error("postgres_url", "\(error)")
            }
            return StoreSettings.Postgres(url: url, poolSize: poolSize)
        default:
            throw reader.error("backend", "must be sqlite or postgres, got \"\(backend.prefix(40))\"")
        }
    }

    /// `tracing`: absent, the node makes no spans; present, it needs its
    /// endpoint (a section without one would silently trace nothing).
    private static func parseTracing(_ root: inout ConfigReader) throws -> TracingSettings? {
        guard var reader = try root.object("tracing") else { return nil }
        guard let endpoint = try reader.string("endpoint") else {
            throw reader.error("endpoint", "required in a tracing section: the collector's base URL, e.g. http://127.0.0.1:4318 (remove the section to trace nothing)")
        }
        var tracing = TracingSettings(endpoint: endpoint)
        guard let url = URL(string: endpoint), ["http", "https"].contains(url.scheme ?? ""), url.host != nil,
              url.query == nil, url.fragment == nil else {
            throw reader.error("endpoint", "must be the collector's http:// or https:// base URL (spans go to <endpoint>/v1/traces), got \"\(endpoint.prefix(100))\"")
        }
        tracing.serviceName = try reader.string("service_name") ?? tracing.serviceName
        guard !tracing.serviceName.isEmpty, tracing.serviceName.count <= 100 else {
            throw reader.error("service_name", "must be 1 to 100 characters")
        }
        tracing.sampleRatio = try reader.fraction("sample_ratio") ?? tracing.sampleRatio
        tracing.flushMilliseconds = Int(try reader.integer("flush_ms", range: 10...60_000) ?? Int64(tracing.flushMilliseconds))
        tracing.maxQueue = Int(try reader.integer("max_queue", range: 1...1_000_000) ?? Int64(tracing.maxQueue))
        try reader.finish()
        return tracing
    }

    /// A kind's rates per user and per tenant: 0 (off) to 1,000,000.
    private static func parseRates(_ reader: inout ConfigReader, _ kind: RequestRates.Kind,
                                   defaults: RequestRates.Limits) throws -> RequestRates.Limits {
        RequestRates.Limits(
            perUser: Int(try reader.integer(kind.userKey, range: 0...1_000_000) ?? Int64(defaults.perUser)),
            perTenant: Int(try reader.integer(kind.tenantKey, range: 0...1_000_000) ?? Int64(defaults.perTenant)))
    }

    private static func parseConnectionLimits(_ reader: inout ConfigReader, declaredBody: Int64) throws -> ConnectionLimits {
        var connections = ConnectionLimits()
        connections.maxConnections = Int(try reader.integer("max_connections", range: 1...10_000_000) ?? Int64(connections.maxConnections))
        connections.maxPendingPerAddress = Int(try reader.integer("max_pending_connections_per_ip", range: 1...10_000_000)
                                                ?? Int64(connections.maxPendingPerAddress))
        connections.maxPerUser = Int(try reader.integer("max_connections_per_user", range: 1...10_000_000) ?? Int64(connections.maxPerUser))
        connections.maxPerTenant = Int(try reader.integer("max_connections_per_tenant", range: 1...10_000_000)
                                       ?? Int64(connections.maxPerTenant))
        connections.maxRequestsPerUser = Int(try reader.integer("max_requests_in_progress_per_user", range: 1...10_000_000)
                                             ?? Int64(connections.maxRequestsPerUser))
        connections.maxRequestsPerTenant = Int(try reader.integer("max_requests_in_progress_per_tenant", range: 1...10_000_000)
                                               ?? Int64(connections.maxRequestsPerTenant))
        connections.headerTimeout = try reader.integer("header_timeout_seconds", range: 1...86_400).map { .seconds($0) }
            ?? connections.headerTimeout
        connections.idleTimeout = try reader.integer("idle_timeout_seconds", range: 1...86_400).map { .seconds($0) }
            ?? connections.idleTimeout
        connections.bodyTimeout = try reader.integer("body_timeout_seconds", range: 1...86_400).map { .seconds($0) }
            ?? connections.bodyTimeout
        connections.maxRequestLineBytes = Int(try reader.integer("max_request_line_bytes", range: 256...65_536)
                                              ?? Int64(connections.maxRequestLineBytes))
        connections.maxHeaderBytes = Int(try reader.integer("max_header_bytes", range: 1024...65_536) ?? Int64(connections.maxHeaderBytes))
        connections.maxDeclaredBodyBytes = declaredBody
        return connections
    }

    private static func parseAuth(_ root: inout ConfigReader, env: String, source: String,
                                  expand: @escaping @Sendable (String, String) throws -> String) throws -> AuthSettings {
        guard var reader = try root.object("auth") else { return AuthSettings(chain: [], anonymous: nil, expiryLeewaySeconds: 60) }
        let chain = try reader.stringArray("chain") ?? []
        let leeway = try reader.integer("expiry_leeway_seconds", range: 0...3600) ?? 60
        var cache = AuthCache()
        if var cacheReader = try reader.object("cache") {
            cache.seconds = Int(try cacheReader.integer("seconds", range: 0...3600) ?? Int64(cache.seconds))
            cache.entries = Int(try cacheReader.integer("entries", range: 1...1_000_000) ?? Int64(cache.entries))
            try cacheReader.finish()
        }
        var anonymous: AnonymousIdentity?
        if var anon = try reader.object("anonymous") {
            guard env != "prod" else {
                throw anon.error("", "an anonymous identity is never allowed when node.env is \"prod\"")
            }
            anonymous = AnonymousIdentity(tenantID: try anon.requiredString("tenant_id"),
                                          userID: try anon.requiredString("user_id"),
                                          scopes: try anon.stringArray("scopes") ?? [])
            guard TenantID(anonymous!.tenantID) != nil else {
                throw anon.error("tenant_id", "must match ^t_[a-z0-9][a-z0-9_-]{0,62}$")
            }
            try anon.finish()
        }
        try reader.finish()
        return AuthSettings(chain: chain, anonymous: anonymous, expiryLeewaySeconds: Int(leeway), cache: cache)
    }

    private static func parsePlugins(_ root: inout ConfigReader, source: String,
                                     expand: @escaping @Sendable (String, String) throws -> String) throws -> [PluginSettings] {
        guard let entries = try root.array("plugins") else { return [] }
        return try entries.map { value, path in
            var entry = try ConfigReader(value, file: source, path: path, expand: expand)
            let pluginPath = try entry.requiredString("path")
            let name = try entry.string("name")
            let section = try entry.raw("config").map { try expandAll($0, path: "\(path).config", expand: expand) } ?? .object([:])
            guard case .object = section else {
                throw entry.error("config", "expected an object, got \(section.typeName)")
            }
            try entry.finish()
            return PluginSettings(path: pluginPath, expectedName: name, config: section, keyPath: path)
        }
    }

    /// Expands `${NAME}` in every string of a plugin's section.
    private static func expandAll(_ value: JSONValue, path: String,
                                  expand: (String, String) throws -> String) throws -> JSONValue {
        switch value {
        case .string(let text): return .string(try expand(text, path))
        case .array(let elements):
            return .array(try elements.enumerated().map { try expandAll($1, path: "\(path)[\($0)]", expand: expand) })
        case .object(let members):
            return .object(try members.reduce(into: [:]) { result, member in
                result[member.key] = try expandAll(member.value, path: "\(path).\(member.key)", expand: expand)
            })
        default: return value
        }
    }

    /// `path` made absolute against the current working directory, with
    /// `.` segments and repeated slashes removed (`..` is kept: it means what
    /// the filesystem says it means once symlinks are involved).
    static func absolutePath(_ path: String) -> String {
        let joined = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        let segments = joined.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        return "/" + segments.joined(separator: "/")
    }

    /// Replaces `${NAME}` with the environment variable NAME, and `${data_dir}`
    /// with the node's data directory. A missing variable is an error: a
    /// secret silently replaced by "" would be worse.
    static func expandVariables(_ text: String, path: String, source: String, dataDirectory: String?,
                                environment: [String: String]) throws -> String {
        guard text.contains("${") else { return text }
        var result = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            result += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw ConfigError(file: source, path: path, message: "unterminated ${ in \"\(text)\"")
            }
            let name = String(rest[start.upperBound..<end])
            if name == "data_dir", let dataDirectory {
                result += dataDirectory
            } else if let value = environment[name] {
                result += value
            } else {
                throw ConfigError(file: source, path: path, message: "environment variable \(name) is not set")
            }
            rest = rest[rest.index(after: end)...]
        }
        return result + rest
    }
}
