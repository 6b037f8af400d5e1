import PluginAPI

/// Exports an `AuthProvider` through the C ABI. A Swift plugin's whole
/// entry point is:
///
///     @_cdecl("northstar_plugin_v1")
///     public func entry(_ offer: UnsafePointer<ns_host_offer>?,
///                       _ info: UnsafeMutablePointer<UnsafePointer<ns_plugin_info>?>?,
///                       _ error: OpaquePointer?) -> ns_status {
///         AuthPluginExport.entry(MyProvider.self, offer, info, error)
///     }
///
/// Only C types cross: the provider lives in a box the host sees as `void *`.
public enum AuthPluginExport {
    nonisolated(unsafe) static var info: UnsafePointer<ns_plugin_info>?

    /// Answers the host's offer with the provider's info.
    public static func entry(_ type: any AuthProvider.Type, _ offer: UnsafePointer<ns_host_offer>?,
                             _ outInfo: UnsafeMutablePointer<UnsafePointer<ns_plugin_info>?>?,
                             _ error: OpaquePointer?) -> ns_status {
        guard let offer, let outInfo, PluginOffer.accepts(offer) else { return ns_status(NS_ERR_UNSUPPORTED) }
        api = offer.pointee.api
        providerType = type
        if info == nil { info = makeInfo(type) }
        outInfo.pointee = info
        return ns_status(NS_OK)
    }


    /// Static storage for the info, its strings and the vtable: never freed.
    static func makeInfo(_ type: any AuthProvider.Type) -> UnsafePointer<ns_plugin_info> {
        var vtable = ns_auth_vtable()
        vtable.struct_size = UInt32(MemoryLayout<ns_auth_vtable>.size)
        vtable.minor = UInt32(NS_AUTH_VTABLE_MINOR)
        vtable.verify = { instance, credential, claims, outDecision, slot in
            guard let credential, let outDecision else { return ns_status(NS_ERR_INVALID_ARGUMENT) }
            let input = AuthCredential(scheme: credential.pointee.scheme.string,
                                       value: credential.pointee.value.string,
                                       source: credential.pointee.source)
            do {
                switch try box(instance).provider.verify(input) {
                case .accept(let values):
                    for (name, value) in values {
                        withNSStr(name) { name in withNSStr(value) { _ = api?.pointee.claim_set(claims, name, $0) } }
                    }
                    outDecision.pointee = ns_auth_decision(NS_AUTH_ACCEPT)
                case .pass:
                    outDecision.pointee = ns_auth_decision(NS_AUTH_PASS)
                case .reject(let reason):
                    withNSStr(reason) { api?.pointee.error_set(slot, $0) }
                    outDecision.pointee = ns_auth_decision(NS_AUTH_REJECT)
                }
                return ns_status(NS_OK)
            } catch {
                return report(error, to: slot)
            }
        }
        vtable.mint = { instance, claims, count, ttl, out, slot in
            var values: [String: String] = [:]
            for index in 0..<Int(count) {
                guard let claim = claims?[index] else { continue }
                values[claim.name.string] = claim.value.string
            }
            do {
                let token = try box(instance).provider.mint(claims: values, ttlSeconds: ttl)
                return withNSBytes(Array(token.utf8)) { api?.pointee.buffer_append(out, $0) ?? ns_status(NS_ERR_INTERNAL) }
            } catch {
                return report(error, to: slot)
            }
        }
        return PluginOffer.info(kind: Int32(NS_KIND_AUTH), name: type.name, version: type.version, summary: type.summary,
                                vtable: PluginOffer.permanent(vtable)) { info in
            info.`init` = { hostAPI, host, config, outInstance, slot in
                guard let hostAPI, let outInstance, let type = providerType else { return ns_status(NS_ERR_INVALID_ARGUMENT) }
                do {
                    let provider = try type.init(config: PluginOffer.bytes(config), host: HostLink(api: hostAPI, host: host))
                    outInstance.pointee = Unmanaged.passRetained(ProviderBox(provider)).toOpaque()
                    return ns_status(NS_OK)
                } catch {
                    return report(error, to: slot)
                }
            }
            info.destroy = PluginOffer.releaseInstance
        }
    }
}

// File-level state and helpers: a C function pointer cannot capture context,
// so the callbacks reach these instead of static members.

/// The provider type this plugin exports (one per library), and the host's table.
nonisolated(unsafe) private var providerType: (any AuthProvider.Type)?
nonisolated(unsafe) private var api: UnsafePointer<ns_host_api>?

/// Holds a provider behind the `void *` instance pointer.
private final class ProviderBox {
    let provider: any AuthProvider
    init(_ provider: any AuthProvider) { self.provider = provider }
}

private func box(_ instance: UnsafeMutableRawPointer?) -> ProviderBox {
    Unmanaged<ProviderBox>.fromOpaque(instance!).takeUnretainedValue()
}

private func report(_ error: any Error, to slot: OpaquePointer?) -> ns_status {
    PluginOffer.report(error, api: api, slot: slot)
}
