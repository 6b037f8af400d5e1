import Logging
import PluginAPI

/// Host services for storage plugins.
///
/// The host does not run storage plugins yet (`serve` refuses them before it
/// binds the port, `kind-not-runnable`), so these entries can only be reached
/// by a plugin that calls them out of turn: they log instead of crashing.
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
