import Foundation
import Logging

/// The whole configuration of one Northstar node, as documented in
/// `docs/configuration.md`.
public struct NorthstarConfig: Sendable {
    /// The environment this node serves (`dev`, `staging`, `prod`, ...).
    /// Credentials for another env are refused.
    public var env: String
    public var listen: ListenAddress
    /// Where the node keeps its database and generated secrets. Always
    /// absolute: a relative `data_dir` is resolved against the working
    /// directory once, at load, before any plugin sees `${data_dir}`.
    public var dataDirectory: String
    /// Where relative plugin paths are looked up; nil means beside the executable.
    public var pluginDirectory: String?
    /// When set, `/metrics` answers only `Authorization: Bearer <admin_token>`.
    public var adminToken: String?
    /// After SIGTERM, how long the node keeps serving with `/readyz` at 503
    /// before it stops taking connections (`node.drain_seconds`), so that a
    /// load balancer stops sending first.
    public var drainSeconds: Int = 0
    /// Then, how long open requests may take to finish before the node ends
    /// them itself (`node.drain_deadline_seconds`).
    public var drainDeadlineSeconds: Int = 10
    /// How log lines are written (`node.log_format`): text, or one JSON object per line.
    public var logFormat: LogFormat = .text
    /// Log levels by logger label prefix (`node.log_levels`), e.g.
    /// `"northstar.http": "debug"`; the longest matching prefix wins.
    public var logLevels: [String: Logger.Level] = [:]
    /// Web origins whose pages may call the REST API (`node.allowed_origins`):
    /// they get CORS headers and their preflights are answered.
    public var allowedOrigins: [String] = []
    /// Where the browser client lives (`node.client_dir`): when set, the node
    /// serves `/client/northstar.js`, its types and the `/demo` page from it.
    public var clientDirectory: String?

    public enum LogFormat: String, Sendable { case text, json }
    public var limits: Limits
    public var store: StoreSettings
    public var storage: StorageSettings
    public var auth: AuthSettings
    /// What `/metrics` may label by tenant.
    public var metrics = MetricsSettings()
    /// Where spans go; nil: the node makes none.
    public var tracing: TracingSettings?
    /// Plugins in start order.
    public var plugins: [PluginSettings]
    /// The file this came from (`<embedded dev default>` for the default).
    public var source: String

    /// Request limits that protect the node.
    public struct Limits: Sendable {
        public var maxBodyBytes: Int
        /// Request bodies read at once, all requests together (at least `maxBodyBytes`).
        public var maxBodyBytesInFlight = 256 << 20
        /// Canvas commands: document size, operations per command, pointer depth.
        public var commands: CommandLimits
        /// Per-connection send queues and WebSocket messages.
        public var transports: WebSocketLimits
        /// The largest artifact or media object; refused while it streams.
        public var maxObjectBytes: UInt64
        /// Graft: batch size, samples per gesture, time span.
        public var gestures: GestureLimits
        /// Connections: how many, how long each phase, how large a head.
        public var connections = ConnectionLimits()
        /// Writes, and REST reads, per second per user and per tenant.
        public var writes = RequestRates.Limits.writes
        public var reads = RequestRates.Limits.reads
        /// WebSocket messages per second per user and per tenant (paced, not refused).
        public var webSocketMessages = RequestRates.Limits.webSocketMessages
        /// Failed authentications per second the node answers at once; past
        /// it, each is answered a second late (0: never held).
        public var authFailuresPerSecond = 100
    }

    /// Artifacts and media: which storage plugin holds them.
    public struct StorageSettings: Sendable {
        /// The storage plugin's name; unset: the only storage plugin loaded.
        public var backend: String?
        /// A storage call that takes longer fails with 504 `storage_timeout`.
        public var timeoutMilliseconds: Int
    }

    /// The embedded event store.
    public struct StoreSettings: Sendable {
        /// SQLite file, relative to the data directory unless absolute.
        public var sqlitePath: String
        /// Events kept per stream (0: keep all). Older ones are pruned and a
        /// resume below the first kept `seq` gets an explicit gap answer.
        public var retainEventsPerStream: Int64
        /// A canvas snapshot is stored every this many revisions, so reading
        /// an old revision replays at most this many commands.
        public var snapshotEvery: Int64
        /// Set for `store.backend: postgres`: the cluster's database instead of the SQLite file.
        public var postgres: Postgres?

        public struct Postgres: Sendable {
            /// `postgres://user[:password]@host[:port]/database[?sslmode=...]`.
            public var url: String
            /// Connections this node keeps open at most.
            public var poolSize: Int
        }
    }

    /// The auth chain and the optional anonymous identity.
    public struct AuthSettings: Sendable {
        /// Auth plugin names, asked in this order; empty means every auth
        /// plugin, in the order they are listed under `plugins`.
        public var chain: [String]
        /// An identity for requests without credentials. Refused in `prod`.
        public var anonymous: AnonymousIdentity?
        /// How long past its `exp` a credential is still honoured (clock
        /// skew); streams opened with it end then.
        public var expiryLeewaySeconds: Int
        /// How long an accepted credential is remembered.
        public var cache = AuthCache()
    }

    /// `/metrics` labels no tenant unless asked: then at most `maxTenants`
    /// tenants get their own label, the rest are counted as `other`.
    public struct MetricsSettings: Sendable {
        public var perTenant = false
        public var maxTenants = 100

        public init(perTenant: Bool = false, maxTenants: Int = 100) {
            self.perTenant = perTenant
            self.maxTenants = maxTenants
        }
    }

    /// Spans exported over OTLP/HTTP (JSON) to `<endpoint>/v1/traces`.
    public struct TracingSettings: Sendable {
        /// The collector's base URL, `http://` or `https://`.
        public var endpoint: String
        /// The `service.name` resource attribute.
        public var serviceName = "northstar"
        /// The share of traces started here that are recorded; a request's
        /// own `traceparent` flag decides for the traces it continues.
        public var sampleRatio = 1.0
        /// How often waiting spans are sent.
        public var flushMilliseconds = 1000
        /// Spans waiting to be sent past which new ones are dropped.
        public var maxQueue = 4096

        public init(endpoint: String) { self.endpoint = endpoint }
    }

    /// How long, and how many, accepted credentials the node remembers, so
    /// a client's next request with the same token skips the plugin.
    public struct AuthCache: Sendable {
        /// 0: every request asks the plugins. A credential revoked at its
        /// source keeps working for up to this long.
        public var seconds = 30
        public var entries = 10_000

        public init(seconds: Int = 30, entries: Int = 10_000) {
            self.seconds = seconds
            self.entries = entries
        }
    }

    /// The identity given to requests without a credential, when configured.
    public struct AnonymousIdentity: Sendable {
        public var tenantID: String
        public var userID: String
        public var scopes: [String]

        public init(tenantID: String, userID: String, scopes: [String]) {
            self.tenantID = tenantID
            self.userID = userID
            self.scopes = scopes
        }
    }

    /// One plugin to load.
    public struct PluginSettings: Sendable {
        /// The file: absolute, or relative to the plugin directory.
        public var path: String
        /// If set, the name the plugin must report (a guard against a wrong file).
        public var expectedName: String?
        /// The plugin's own section, handed to its `init` as JSON.
        public var config: JSONValue
        /// Where this entry sits in the file, for errors.
        public var keyPath: String
    }

    /// The host and port to listen on.
    public struct ListenAddress: Sendable, CustomStringConvertible {
        public var host: String
        public var port: Int

        /// Parses `HOST:PORT` (`[::1]:8080` for IPv6).
        public init?(_ text: String) {
            guard let colon = text.lastIndex(of: ":"),
                  let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
            var host = String(text[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty else { return nil }
            self.host = host
            self.port = port
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// Values that replace the file's, from the command line or environment.
    public struct Overrides: Sendable {
        public var listen: String?
        public var dataDirectory: String?
        public var env: String?

        public init(listen: String? = nil, dataDirectory: String? = nil, env: String? = nil) {
            self.listen = listen
            self.dataDirectory = dataDirectory
            self.env = env
        }

        /// `NORTHSTAR_LISTEN`, `NORTHSTAR_DATA_DIR` and `NORTHSTAR_ENV`, under
        /// whatever the command line says.
        public func applyingEnvironment(_ environment: [String: String]) -> Overrides {
            Overrides(
                listen: listen ?? environment["NORTHSTAR_LISTEN"],
                dataDirectory: dataDirectory ?? environment["NORTHSTAR_DATA_DIR"],
                env: env ?? environment["NORTHSTAR_ENV"]
            )
        }
    }
}
