import PluginAPI

/// Exports a `StorageProvider` through the C ABI. A Swift storage plugin's
/// whole entry point is:
///
///     @_cdecl("northstar_plugin_v1")
///     public func entry(_ offer: UnsafePointer<ns_host_offer>?,
///                       _ info: UnsafeMutablePointer<UnsafePointer<ns_plugin_info>?>?,
///                       _ error: OpaquePointer?) -> ns_status {
///         StoragePluginExport.entry(MyBackend.self, offer, info, error)
///     }
///
/// Each vtable entry starts a task and returns at once (entries run on the
/// host's event loop); the task completes the host's call exactly once.
public enum StoragePluginExport {
    nonisolated(unsafe) static var info: UnsafePointer<ns_plugin_info>?

    public static func entry(_ type: any StorageProvider.Type, _ offer: UnsafePointer<ns_host_offer>?,
                             _ outInfo: UnsafeMutablePointer<UnsafePointer<ns_plugin_info>?>?,
                             _ error: OpaquePointer?) -> ns_status {
        guard let offer, let outInfo, PluginOffer.accepts(offer), let table = offer.pointee.api else {
            return ns_status(NS_ERR_UNSUPPORTED)
        }
        storageAPI = table
        storageType = type
        if info == nil { info = makeInfo(type) }
        outInfo.pointee = info
        return ns_status(NS_OK)
    }

    static func makeInfo(_ type: any StorageProvider.Type) -> UnsafePointer<ns_plugin_info> {
        var vtable = ns_storage_vtable()
        vtable.struct_size = UInt32(MemoryLayout<ns_storage_vtable>.size)
        vtable.minor = UInt32(NS_STORAGE_VTABLE_MINOR)
        vtable.put_open = { instance, key, info, call in
            let (provider, key, call) = (provider(instance), key.string, Call(call))
            let type = info?.pointee.content_type.string ?? ""
            let size = info.map(\.pointee.size).flatMap { $0 == UInt64.max ? nil : $0 }
            Task {
                do {
                    let upload = try await provider.putOpen(key: key, contentType: type, size: size)
                    storageAPI?.pointee.storage_set_handle(call.pointer, Unmanaged.passRetained(upload).toOpaque())
                    call.complete(nil)
                } catch {
                    call.fail(error)
                }
            }
        }
        vtable.put_write = { instance, handle, chunk, call in
            let (provider, upload, bytes, call) = (provider(instance), Handle(handle), chunk.array, Call(call))
            Task {
                do {
                    try await provider.putWrite(upload.object, bytes)
                    call.complete(nil)
                } catch {
                    call.fail(error)
                }
            }
        }
        vtable.put_finish = { instance, handle, call in
            let (provider, upload, call) = (provider(instance), Handle(handle), Call(call))
            Task {
                defer { upload.release() }
                do {
                    call.complete(try await provider.putFinish(upload.object))
                } catch {
                    provider.putAbort(upload.object)
                    call.fail(error)
                }
            }
        }
        vtable.put_abort = { instance, handle in
            guard handle != nil else { return }
            let upload = Handle(handle)
            provider(instance).putAbort(upload.object)
            upload.release()
        }
        vtable.get_open = { instance, key, offset, length, call in
            let (provider, key, call) = (provider(instance), key.string, Call(call))
            Task {
                do {
                    let (object, reader) = try await provider.getOpen(key: key, offset: offset, length: length)
                    storageAPI?.pointee.storage_set_handle(call.pointer, Unmanaged.passRetained(reader).toOpaque())
                    call.complete(object)
                } catch {
                    call.fail(error)
                }
            }
        }
        vtable.get_read = { instance, handle, maxBytes, call in
            let (provider, reader, call) = (provider(instance), Handle(handle), Call(call))
            Task {
                do {
                    let bytes = try await provider.getRead(reader.object, maxBytes: Int(min(maxBytes, 1 << 24)))
                    withNSBytes(bytes) { storageAPI?.pointee.storage_deliver(call.pointer, $0) }
                    call.complete(nil)
                } catch {
                    call.fail(error)
                }
            }
        }
        vtable.get_close = { instance, handle in
            guard handle != nil else { return }
            let reader = Handle(handle)
            provider(instance).getClose(reader.object)
            reader.release()
        }
        vtable.head = { instance, key, call in
            let (provider, key, call) = (provider(instance), key.string, Call(call))
            Task {
                do { call.complete(try await provider.head(key: key)) } catch { call.fail(error) }
            }
        }
        vtable.list = { instance, prefix, token, limit, call in
            let (provider, prefix, token, call) = (provider(instance), prefix.string, token.string, Call(call))
            Task {
                do {
                    let page = try await provider.list(prefix: prefix, pageToken: token, limit: Int(max(1, min(limit, 1000))))
                    for entry in page.objects {
                        entry.object.withInfo { info in withNSStr(entry.key) { storageAPI?.pointee.storage_list_entry(call.pointer, $0, info) } }
                    }
                    if let next = page.next { withNSStr(next) { storageAPI?.pointee.storage_list_next(call.pointer, $0) } }
                    call.complete(nil)
                } catch {
                    call.fail(error)
                }
            }
        }
        vtable.remove = { instance, key, call in
            let (provider, key, call) = (provider(instance), key.string, Call(call))
            Task {
                do {
                    try await provider.remove(key: key)
                    call.complete(nil)
                } catch {
                    call.fail(error)
                }
            }
        }
        return PluginOffer.info(kind: Int32(NS_KIND_STORAGE), name: type.name, version: type.version, summary: type.summary,
                                vtable: PluginOffer.permanent(vtable)) { info in
            info.`init` = { hostAPI, host, config, outInstance, slot in
                guard let hostAPI, let outInstance, let type = storageType else { return ns_status(NS_ERR_INVALID_ARGUMENT) }
                do {
                    let provider = try type.init(config: PluginOffer.bytes(config), host: HostLink(api: hostAPI, host: host))
                    outInstance.pointee = Unmanaged.passRetained(ProviderBox(provider)).toOpaque()
                    return ns_status(NS_OK)
                } catch {
                    return PluginOffer.report(error, api: hostAPI, slot: slot, fallback: Int32(NS_ERR_CONFIG))
                }
            }
            info.destroy = PluginOffer.releaseInstance
        }
    }
}

// File-level state: a C function pointer cannot capture context.
nonisolated(unsafe) private var storageType: (any StorageProvider.Type)?
nonisolated(unsafe) private var storageAPI: UnsafePointer<ns_host_api>?

private final class ProviderBox {
    let provider: any StorageProvider
    init(_ provider: any StorageProvider) { self.provider = provider }
}

private func provider(_ instance: UnsafeMutableRawPointer?) -> any StorageProvider {
    Unmanaged<ProviderBox>.fromOpaque(instance!).takeUnretainedValue().provider
}

/// A plugin-state pointer the host holds (an upload or a reader).
private struct Handle: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer?
    init(_ raw: UnsafeMutableRawPointer?) { self.raw = raw }
    var object: AnyObject { Unmanaged<AnyObject>.fromOpaque(raw!).takeUnretainedValue() }
    func release() { Unmanaged<AnyObject>.fromOpaque(raw!).release() }
}

/// The host's pending call, completed exactly once.
private struct Call: @unchecked Sendable {
    let pointer: OpaquePointer?
    init(_ pointer: OpaquePointer?) { self.pointer = pointer }

    func complete(_ object: StoredObject?) {
        withNSStr("") { message in
            if let object {
                object.withInfo { storageAPI?.pointee.storage_complete(pointer, ns_status(NS_OK), message, $0) }
            } else {
                storageAPI?.pointee.storage_complete(pointer, ns_status(NS_OK), message, nil)
            }
        }
    }

    func fail(_ error: any Error) {
        let failure = error as? PluginFailure ?? PluginFailure(status: Int32(NS_ERR_INTERNAL), message: "\(error)")
        withNSStr(failure.message) { storageAPI?.pointee.storage_complete(pointer, failure.status, $0, nil) }
    }
}
