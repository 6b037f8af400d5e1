import Foundation
import NorthstarPluginKit
import PluginAPI

// The host services about identity: `authenticate` lends a principal handle,
// `principal_renew` (1.2) renews one in place for the same identity.

func authenticate(_ host: OpaquePointer?, _ credential: UnsafePointer<ns_credential>?, _ done: ns_auth_done?,
                  _ context: UnsafeMutableRawPointer?) {
    guard let done else { return }
    let connections = PluginHandle.from(host)?.kernel?.userConnections
    // A plugin of an earlier minor knows no NS_ERR_TENANT_LIMIT (1.5): it gets the user's code, the message says which.
    let tenantLimitStatus = (PluginHandle.from(host)?.abiMinor ?? 0) >= 5 ? NS_ERR_TENANT_LIMIT : NS_ERR_TOO_LARGE
    let (userLimit, tenantLimit) = (connections?.limit ?? 0, connections?.tenantLimit ?? 0)
    let request = RequestFacts.current  // the request whose handler authenticates, if any
    verify(credential, host: host, done: done, context: context, service: "authenticate") { verified in
        // Each principal is one connection of its user's and its tenant's (see `UserConnections`).
        let refusal = connections?.claim(verified)
        if refusal != nil { await ConnectionCount.holding { try? await Task.sleep(for: UserConnections.refusalHold) } }
        switch refusal {
        case .user?:
            return (NS_ERR_TOO_LARGE, nil, "user \(verified.userID) holds \(userLimit) connections on this node already "
                        + "(limits.max_connections_per_user); close one first")
        case .tenant?:
            return (tenantLimitStatus, nil, "tenant \(verified.tenant) holds \(tenantLimit) connections on this node already, "
                        + "all its users together (limits.max_connections_per_tenant); retry once some close")
        case nil:
            // A WebSocket this handshake becomes carries this user's messages (see `HostWebSocket.run`).
            request?.identity = UserIdentity(verified)
            return (NS_OK, PrincipalHandles.lend(Principal(verified, countedIn: connections)), "")
        }
    }
}

/// `principal_renew` (1.2): a fresh credential for the same identity replaces
/// the principal's context in place, so its subscriptions live on.
func renew(_ host: OpaquePointer?, _ handle: OpaquePointer?, _ credential: UnsafePointer<ns_credential>?,
           _ done: ns_auth_done?, _ context: UnsafeMutableRawPointer?) {
    guard let done else { return }
    guard let principal = PrincipalHandles.find(handle) else {
        withNSStr("principal_renew needs a live principal") { done(context, ns_status(NS_ERR_INVALID_ARGUMENT), nil, $0) }
        return
    }
    verify(credential, host: host, done: done, context: context, service: "principal_renew") { verified in
        principal.renew(with: verified) ? (NS_OK, nil, "") : (NS_ERR_DENIED, nil, "the credential names another identity")
    }
}

/// Reads a plugin's credential, verifies it through the auth chain off the
/// caller's thread, and answers `done` with what `accepted` makes of the
/// verified context, or with the refusal. Called while the host hands the
/// plugin a request (SSE's `on_request`, a WebSocket handshake), the
/// verification carries that request's id and trace, so its log lines and
/// the request's answer name the same request.
private func verify(_ credential: UnsafePointer<ns_credential>?, host: OpaquePointer?, done: ns_auth_done,
                    context: UnsafeMutableRawPointer?, service: String,
                    accepted: @escaping @Sendable (RequestContext) async -> (Int, OpaquePointer?, String)) {
    let callback = Callback(function: done, context: context)
    guard let kernel = PluginHandle.from(host)?.kernel, let credential,
          credential.pointee.struct_size >= UInt32(NS_CREDENTIAL_MIN_SIZE) else {
        withNSStr("\(service) needs a credential") { done(context, ns_status(NS_ERR_INVALID_ARGUMENT), nil, $0) }
        return
    }
    let presented = Credential(source: Credential.Source(rawValue: credential.pointee.source) ?? .header,
                               scheme: credential.pointee.scheme.string, value: credential.pointee.value.string)
    let request = RequestFacts.current
    Task {
        let (status, principal, message): (Int, OpaquePointer?, String)
        do {
            let verified = try await kernel.auth.authenticate(presented, requestID: request?.requestID ?? TraceContext.requestID(from: nil),
                                                              traceparent: request?.traceparent ?? TraceContext.traceparent(from: nil))
            (status, principal, message) = await accepted(verified)
        } catch let error as KernelError {
            (status, principal, message) = (error.kind == .unavailable ? NS_ERR_UNAVAILABLE : NS_ERR_DENIED, nil, error.message)
        } catch {
            (status, principal, message) = (NS_ERR_UNAVAILABLE, nil, "authentication failed")
        }
        withNSStr(message) { callback.function(callback.context, ns_status(status), principal, $0) }
    }
}
