import Foundation
import Logging
import Instrumentation
import NIOPosix

/// Turns a credential into a `RequestContext`, through the auth plugins in
/// chain order, and checks what they verified against the node's rules.
///
/// This is the only place a `RequestContext` is made: identity never comes
/// from a header, a query parameter or a path.
public final class AuthChain: Sendable {
    private let providers: [PluginInstance]
    private let env: String
    private let anonymous: NorthstarConfig.AnonymousIdentity?
    private let logger = Logger(label: "northstar.auth")
    /// Where verify calls and refusals are counted (`/metrics`); nil in tests that need none.
    private let metrics: Metrics?

    /// How long past its `exp` a credential is still honoured (clock skew).
    private let expiryLeeway: TimeInterval
    /// Credentials accepted lately (nil: every request asks the plugins).
    private let verified: VerifiedCredentials?
    /// Failures past their rate are answered a second late.
    let failures: FailedAuthentications

    public init(providers: [PluginInstance], env: String, anonymous: NorthstarConfig.AnonymousIdentity?,
                expiryLeeway: TimeInterval = 60, cache: NorthstarConfig.AuthCache? = nil, failuresPerSecond: Int = 0,
                metrics: Metrics? = nil) {
        self.providers = providers
        self.metrics = metrics
        failures = FailedAuthentications(perSecond: failuresPerSecond, metrics: metrics)
        verified = cache.flatMap { cache in
            cache.seconds > 0 ? VerifiedCredentials(lifetime: .seconds(cache.seconds), capacity: cache.entries) : nil
        }
        self.env = env
        self.anonymous = anonymous
        self.expiryLeeway = expiryLeeway
    }

    /// Authenticates `credential` (nil: none was presented).
    /// - Throws: `KernelError` 401 for a missing, rejected or unusable
    ///   credential (a second late while failures are over their rate, see
    ///   `FailedAuthentications`), 503 when a provider cannot decide (its
    ///   backend is down).
    public func authenticate(_ credential: Credential?, requestID: String, traceparent: String) async throws -> RequestContext {
        do {
            return try await Traced.span("auth") { span in
                try await authenticateUntraced(credential, requestID: requestID, traceparent: traceparent, span: span)
            }
        } catch let error as KernelError where error.kind == .unauthenticated {
            await failures.afterFailure()
            throw error
        }
    }

    private func authenticateUntraced(_ credential: Credential?, requestID: String, traceparent: String,
                                      span: RecordedSpan?) async throws -> RequestContext {
        guard let credential else {
            guard let anonymous, let tenant = TenantID(anonymous.tenantID) else {
                refused("missing")
                throw KernelError.unauthenticated("a credential is required (Authorization: Bearer <token> or ApiKey <key>)")
            }
            return RequestContext(tenant: tenant, env: env, userID: anonymous.userID, scopes: Set(anonymous.scopes),
                                  requestID: requestID, traceparent: traceparent)
        }
        if let verified {
            // Accepted lately: the node's rules (expiry, env) are checked again, the plugin is not asked.
            if let known = verified.lookup(credential) {
                metrics?.increment("northstar_auth_cache_total", [("result", "hit")])
                span?.attributes["northstar.auth_cache"] = "hit"
                return try context(from: known.claims, provider: known.provider, requestID: requestID, traceparent: traceparent)
            }
            metrics?.increment("northstar_auth_cache_total", [("result", "miss")])
            span?.attributes["northstar.auth_cache"] = "miss"
        }
        for provider in providers {
            let verdict: AuthVerdict
            let started = ContinuousClock.now
            let call = [("plugin", provider.name), ("entry", "verify")]
            defer { metrics?.record("northstar_plugin_call_duration_seconds", call, duration: ContinuousClock.now - started) }
            do {
                // Plugins may block in verify: never on an event loop.
                verdict = try await Traced.span("auth.plugin", ["northstar.plugin": provider.name]) { _ in
                    // On a pool thread: what the plugin fetches (a JWKS) carries this span's trace.
                    let trace = InstrumentationContext.current
                    return try await NIOThreadPool.singleton.runIfActive { try Traced.pluginCall(trace) { try provider.verify(credential) } }
                }
            } catch let error as AuthPluginError {
                metrics?.increment("northstar_plugin_call_errors_total", call)
                refused("unavailable")
                logger.error("auth provider failed", metadata: ["plugin": "\(provider.name)", "error": "\(error.message)",
                                                                "request_id": "\(requestID)"])
                throw KernelError(.unavailable, code: "auth_unavailable", message: "the auth provider cannot verify credentials now")
            }
            switch verdict {
            case .passed:
                continue
            case .rejected(let reason):
                logger.info("credential rejected", metadata: ["plugin": "\(provider.name)", "scheme": "\(credential.scheme)",
                                                               "reason": "\(reason ?? "none given")", "request_id": "\(requestID)"])
                refused("rejected")
                throw KernelError.unauthenticated("the credential is not valid")
            case .accepted(let claims):
                let context = try context(from: claims, provider: provider.name, requestID: requestID, traceparent: traceparent)
                verified?.remember(credential, provider: provider.name, claims: claims)
                return context
            }
        }
        refused("no_provider")
        throw KernelError.unauthenticated("no auth provider accepts the \"\(credential.scheme)\" scheme")
    }

    /// Counts a refusal by a bounded reason (never the tenant or the user).
    private func refused(_ reason: String) {
        metrics?.increment("northstar_auth_rejections_total", [("reason", reason)])
    }

    /// Checks verified claims against the node's rules and builds the context.
    func context(from claims: [String: String], provider: String, requestID: String, traceparent: String) throws -> RequestContext {
        func refuse(_ why: String, _ reason: String) -> KernelError {
            refused(reason)
            logger.info("verified credential refused", metadata: ["plugin": "\(provider)", "reason": "\(why)",
                                                                   "request_id": "\(requestID)"])
            return KernelError.unauthenticated(why)
        }
        guard let tenantText = claims["tenant_id"], let tenant = TenantID(tenantText) else {
            throw refuse("the credential's tenant_id is missing or does not match ^t_[a-z0-9][a-z0-9_-]{0,62}$", "bad_tenant")
        }
        guard let user = claims["user_id"], !user.isEmpty, user.count <= 256 else {
            throw refuse("the credential names no user", "no_user")
        }
        guard let credentialEnv = claims["env"] else { throw refuse("the credential names no env", "no_env") }
        guard credentialEnv == env else {
            // The log names both envs; the client learns only that the credential is not valid here.
            logger.info("verified credential refused", metadata: ["plugin": "\(provider)", "request_id": "\(requestID)",
                                                                   "reason": "for env \(credentialEnv), this node serves \(env)"])
            refused("wrong_env")
            throw KernelError.unauthenticated("the credential is not valid")
        }
        var expiresAt: Date?
        if let expires = claims["expires_at"].flatMap(Double.init) {
            expiresAt = Date(timeIntervalSince1970: expires + expiryLeeway)
            if expiresAt! <= Date() { throw refuse("the credential has expired", "expired") }
        }
        let scopes = Set((claims["scopes"] ?? "").split(separator: " ").map(String.init))
        return RequestContext(tenant: tenant, env: env, userID: user, scopes: scopes, requestID: requestID, traceparent: traceparent,
                              expiresAt: expiresAt)
    }
}
