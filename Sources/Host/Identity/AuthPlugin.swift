import Foundation
import NorthstarPluginKit
import PluginAPI

/// A problem an auth plugin reported, with its own message.
public struct AuthPluginError: Error, CustomStringConvertible, Sendable {
    public let plugin: String
    public let status: Int32
    public let message: String
    public var description: String { "auth plugin \"\(plugin)\": \(message) (status \(status))" }
}

/// What one auth plugin said of one credential.
public enum AuthVerdict: Sendable {
    case accepted([String: String])
    case passed
    /// The plugin's reason, for the log (plugins never put the credential in it).
    case rejected(reason: String?)
}

extension PluginInstance {
    private var authVTable: ns_auth_vtable? {
        guard kind == .auth, let vtable = library.info.pointee.vtable else { return nil }
        return PluginStruct.copy(vtable.assumingMemoryBound(to: ns_auth_vtable.self), minimumSize: Int(NS_AUTH_VTABLE_MIN_SIZE))
    }

    /// Asks the plugin to verify `credential`.
    /// THREAD: blocks while the plugin works; never call it on an event loop.
    public func verify(_ credential: Credential) throws -> AuthVerdict {
        guard let verify = authVTable?.verify else {
            throw AuthPluginError(plugin: name, status: Int32(NS_ERR_UNSUPPORTED), message: "not an auth plugin")
        }
        let sink = ClaimsSink()
        let slot = ErrorSlot()
        var decision = ns_auth_decision(0)
        let status = withNSStr(credential.scheme) { scheme in
            withNSStr(credential.value) { value in
                var cred = ns_credential(struct_size: UInt32(MemoryLayout<ns_credential>.size),
                                         source: credential.source.rawValue, scheme: scheme, value: value)
                return verify(instance, &cred, sink.pointer, &decision, slot.pointer)
            }
        }
        guard status == NS_OK else {
            throw AuthPluginError(plugin: name, status: status, message: slot.message ?? "verify failed")
        }
        switch Int(decision) {
        case Int(NS_AUTH_ACCEPT): return .accepted(sink.claims)
        case Int(NS_AUTH_PASS): return .passed
        default: return .rejected(reason: slot.message)
        }
    }

    /// Whether the plugin can mint credentials.
    var canMint: Bool { authVTable?.mint != nil }

    /// Asks the plugin to mint a credential with `claims`, valid `ttlSeconds`.
    func mint(claims: [String: String], ttlSeconds: Int64) throws -> String {
        guard let mint = authVTable?.mint else {
            throw AuthPluginError(plugin: name, status: Int32(NS_ERR_UNSUPPORTED), message: "this plugin cannot mint tokens")
        }
        let buffer = HostBuffer()
        let slot = ErrorSlot()
        let arena = StringArena()
        let views = claims.sorted { $0.key < $1.key }.map { ns_claim(name: arena.view($0.key), value: arena.view($0.value)) }
        let status = withExtendedLifetime(arena) { mint(instance, views, UInt32(views.count), ttlSeconds, buffer.pointer, slot.pointer) }
        guard status == NS_OK else {
            throw AuthPluginError(plugin: name, status: status, message: slot.message ?? "mint failed")
        }
        return String(decoding: buffer.bytes, as: UTF8.self)
    }
}
