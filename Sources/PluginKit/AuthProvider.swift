import PluginAPI

/// What a Swift auth plugin implements; the kit turns it into the C ABI.
///
/// Instances are created on the main thread by `init(config:host:)` and then
/// used from many host worker threads at once: keep them immutable, or lock.
public protocol AuthProvider: AnyObject, Sendable {
    /// The plugin's name in config and logs: `[a-z][a-z0-9_-]{0,31}`.
    static var name: String { get }
    /// The plugin's own version.
    static var version: String { get }
    /// One line for `northstar plugins inspect`.
    static var summary: String { get }

    /// Creates the provider from its config section (a JSON object).
    /// - Throws: `PluginFailure.config(...)` naming the bad key.
    init(config: [UInt8], host: HostLink) throws

    /// Verifies one credential. THREAD: a host worker thread; may block briefly.
    func verify(_ credential: AuthCredential) throws -> AuthResult

    /// Mints a credential `verify` accepts. The default refuses.
    func mint(claims: [String: String], ttlSeconds: Int64) throws -> String
}

extension AuthProvider {
    public func mint(claims: [String: String], ttlSeconds: Int64) throws -> String {
        throw PluginFailure(status: Int32(NS_ERR_UNSUPPORTED), message: "\(Self.name) cannot mint credentials")
    }
}

/// A credential handed to `verify`. `value` is a secret: never log it.
public struct AuthCredential: Sendable {
    public let scheme: String
    public let value: String
    public let source: Int32
}

/// An auth provider's verdict.
public enum AuthResult: Sendable {
    /// Verified: these claims ("tenant_id", "user_id", "env", "scopes", ...).
    case accept([String: String])
    /// Not this provider's credential: the next one is asked.
    case pass
    /// This provider's, and invalid. `reason` is logged at debug level, so it
    /// must never contain the credential.
    case reject(reason: String)
}

/// An error a plugin reports to the host: an `ns_status` and a message.
public struct PluginFailure: Error, Sendable {
    public let status: Int32
    public let message: String

    public init(status: Int32, message: String) {
        self.status = status
        self.message = message
    }

    /// A config section the plugin refuses; name the key in `message`.
    public static func config(_ message: String) -> PluginFailure {
        PluginFailure(status: Int32(NS_ERR_CONFIG), message: message)
    }
}

/// The plugin's line to the host: logging, for now.
public struct HostLink: @unchecked Sendable {
    let api: UnsafePointer<ns_host_api>
    let host: OpaquePointer?

    /// Logs one line through the host, tagged with the plugin's name.
    public func log(_ level: ns_log_level, _ message: String) {
        withNSStr(message) { api.pointee.log(host, level, $0) }
    }
}
