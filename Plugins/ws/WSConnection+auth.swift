import Foundation
import NorthstarPluginKit
import PluginAPI

/// The `auth` message: a client sends a fresh token for the same tenant and
/// user before its current one runs out, and the host renews the socket's
/// principal in place (`principal_renew`, ABI 1.2), so every subscription
/// goes on. Without it, each subscription ends at the credential's expiry
/// with an `end` message, code `token_expired`.
extension WSConnection {
    func renew(token: String, requestID: String) {
        guard let principal = lock.withLock({ self.principal }) else {
            return send(error: requestID, code: "unauthorized", message: "the socket has no principal")
        }
        let call = Unmanaged.passRetained(RenewCall(connection: self, requestID: requestID)).toOpaque()
        withNSStr("Bearer") { scheme in
            withNSStr(token) { value in
                var credential = ns_credential(struct_size: UInt32(MemoryLayout<ns_credential>.size),
                                               source: ns_credential_source(NS_CREDENTIAL_HEADER), scheme: scheme, value: value)
                api.principal_renew(plugin.host, principal, &credential, onRenewed, call)
            }
        }
    }

    func renewed(_ call: RenewCall, _ status: ns_status, _ message: String) {
        if status == ns_status(NS_OK) {
            sendText(#"{"type":"authenticated","id":\#(call.requestID)}"#)
        } else {
            let code = status == ns_status(NS_ERR_UNAVAILABLE) ? "auth_unavailable" : "unauthorized"
            send(error: call.requestID, code: code, message: message)
        }
    }
}

/// One `auth` message in flight, carried through the host's callback.
final class RenewCall: @unchecked Sendable {
    let connection: WSConnection
    let requestID: String

    init(connection: WSConnection, requestID: String) {
        self.connection = connection
        self.requestID = requestID
    }
}

func onRenewed(_ context: UnsafeMutableRawPointer?, _ status: ns_status, _ principal: OpaquePointer?, _ message: ns_str) {
    let call = Unmanaged<RenewCall>.fromOpaque(context!).takeRetainedValue()
    call.connection.renewed(call, status, message.string)
}
