import Logging
import NorthstarPluginKit
import PluginAPI

/// Host services for transport plugins.
///
/// The host does not run transport plugins yet (`northstar serve` refuses
/// them before it binds the port, see `PluginSet.checkRunnable`), so these
/// entries can only be reached by a plugin that calls them out of turn: they
/// answer NS_ERR_UNSUPPORTED with a message instead of crashing.
enum TransportServices {
    static let reason = "this host does not run transport plugins yet"

    static func install(into table: inout ns_host_api) {
        table.route_add = { _, _, _, _, error in unsupported(error) }
        table.response_start = { _, _, _, _ in ns_status(NS_ERR_UNSUPPORTED) }
        table.response_write = { _, _ in ns_status(NS_ERR_UNSUPPORTED) }
        table.response_end = { _ in }
        table.websocket_accept = { _, _, _, _ in ns_status(NS_ERR_UNSUPPORTED) }
        table.websocket_send = { _, _, _ in ns_status(NS_ERR_UNSUPPORTED) }
        table.websocket_close = { _, _, _ in }
        table.authenticate = { _, _, done, context in
            withNSStr("this host does not run transport plugins yet") { done?(context, ns_status(NS_ERR_UNSUPPORTED), nil, $0) }
        }
        table.principal_release = { _ in }
        table.subscribe = { _, _, _, _, _, _, error in unsupported(error) }
        table.subscription_cancel = { _ in }
        table.kernel_call = { _, _, _, _, _, done, context in
            withNSBytes(Array(#"{"error":{"code":"unsupported","message":"this host does not run transport plugins yet"}}"#.utf8)) {
                done?(context, 501, $0)
            }
        }
    }
}

/// Sets the "not yet" message and answers NS_ERR_UNSUPPORTED.
private func unsupported(_ error: OpaquePointer?) -> ns_status {
    ErrorSlot.from(error)?.message = TransportServices.reason
    return ns_status(NS_ERR_UNSUPPORTED)
}

/// Host services for storage plugins; not run yet, as for transports.
enum StorageServices {
    static func install(into table: inout ns_host_api) {
        table.storage_set_handle = { _, _ in }
        table.storage_deliver = { _, _ in }
        table.storage_list_entry = { _, _, _ in }
        table.storage_list_next = { _, _ in }
        table.storage_complete = { _, _, _, _ in
            Logger(label: "northstar.plugins").error("storage_complete called, but this host does not run storage plugins yet")
        }
    }
}
