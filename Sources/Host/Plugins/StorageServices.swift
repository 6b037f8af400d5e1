import NorthstarPluginKit
import PluginAPI

/// Host services for storage plugins: what they report gathers on the
/// pending `StorageCall` until they complete it.
enum StorageServices {
    static func install(into table: inout ns_host_api) {
        table.storage_set_handle = { call, handle in StorageCall.from(call)?.setHandle(handle) }
        table.storage_deliver = { call, bytes in
            guard let ptr = bytes.ptr else { return }
            StorageCall.from(call)?.deliver(UnsafeRawBufferPointer(start: ptr, count: Int(bytes.len)))
        }
        table.storage_list_entry = { call, key, info in
            guard let info, let object = ObjectInfo(info) else { return }
            StorageCall.from(call)?.listEntry(key.string, object)
        }
        table.storage_list_next = { call, token in StorageCall.from(call)?.listNext(token.string) }
        table.storage_complete = { call, status, message, info in
            StorageCall.from(call)?.complete(status, message.string, info.flatMap(ObjectInfo.init))
        }
    }
}
