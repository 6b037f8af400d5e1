import NorthstarPluginKit
import PluginAPI

/// The plugin's one exported symbol: hands `GCSBackend` to the kit.
@_cdecl("northstar_plugin_v1")
public func northstarPluginV1(_ offer: UnsafePointer<ns_host_offer>?,
                              _ info: UnsafeMutablePointer<UnsafePointer<ns_plugin_info>?>?,
                              _ error: OpaquePointer?) -> ns_status {
    StoragePluginExport.entry(GCSBackend.self, offer, info, error)
}
