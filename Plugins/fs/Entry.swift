import Foundation
import NorthstarPluginKit
import PluginAPI

// The C side of the fs backend: the exported entry, the vtable, and the
// completions. Each entry hands its work to the backend's queue and returns
// at once; the work completes the host's call, exactly once.

/// The host's services, set once by the entry point.
nonisolated(unsafe) private var api = ns_host_api()

@_cdecl("northstar_plugin_v1")
public func northstarPluginV1(_ offer: UnsafePointer<ns_host_offer>?,
                              _ info: UnsafeMutablePointer<UnsafePointer<ns_plugin_info>?>?,
                              _ error: OpaquePointer?) -> ns_status {
    guard let offer, let info, PluginOffer.accepts(offer), let table = offer.pointee.api else { return ns_status(NS_ERR_UNSUPPORTED) }
    api = table.pointee
    info.pointee = pluginInfo
    return ns_status(NS_OK)
}

/// A host call pointer carried into the queue's work.
private struct Call: @unchecked Sendable { let pointer: OpaquePointer? }
private struct Pointer: @unchecked Sendable { let raw: UnsafeMutableRawPointer? }

nonisolated(unsafe) private let pluginInfo: UnsafePointer<ns_plugin_info> = {
    var vtable = ns_storage_vtable()
    vtable.struct_size = UInt32(MemoryLayout<ns_storage_vtable>.size)
    vtable.minor = UInt32(NS_STORAGE_VTABLE_MINOR)
    vtable.put_open = { instance, key, info, call in
        let (backend, key, type, call) = (fs(instance), key.string, info?.pointee.content_type.string ?? "", Call(pointer: call))
        backend.run {
            do {
                let upload = try backend.putOpen(key: key, contentType: type)
                api.storage_set_handle(call.pointer, Unmanaged.passRetained(upload).toOpaque())
                complete(call, nil)
            } catch {
                fail(call, error)
            }
        }
    }
    vtable.put_write = { instance, handle, chunk, call in
        let (backend, upload, call) = (fs(instance), Pointer(raw: handle), Call(pointer: call))
        let bytes = Pointer(raw: UnsafeMutableRawPointer(mutating: chunk.ptr)), count = Int(chunk.len)
        backend.run {
            let upload = Unmanaged<FSUpload>.fromOpaque(upload.raw!).takeUnretainedValue()
            // The chunk is the host's until this call completes: used in place.
            let view = UnsafeRawBufferPointer(start: bytes.raw, count: count)
            do {
                try upload.handle.write(contentsOf: view)
                upload.hasher.update(bufferPointer: view)
                upload.size += UInt64(count)
                complete(call, nil)
            } catch {
                fail(call, FSError(NS_ERR_IO, "write failed: \(error.localizedDescription)"))
            }
        }
    }
    vtable.put_finish = { instance, handle, call in
        let (backend, upload, call) = (fs(instance), Pointer(raw: handle), Call(pointer: call))
        backend.run {
            let upload = Unmanaged<FSUpload>.fromOpaque(upload.raw!).takeRetainedValue()
            do {
                complete(call, try backend.putFinish(upload))
            } catch {
                upload.abort()
                fail(call, error)
            }
        }
    }
    vtable.put_abort = { _, handle in
        guard let handle else { return }
        Unmanaged<FSUpload>.fromOpaque(handle).takeRetainedValue().abort()
    }
    vtable.get_open = { instance, key, offset, length, call in
        let (backend, key, call) = (fs(instance), key.string, Call(pointer: call))
        backend.run {
            do {
                let (record, handle) = try backend.openObject(key)
                guard offset < record.size || (offset == 0 && record.size == 0) else {
                    try? handle.close()
                    throw FSError(NS_ERR_RANGE_NOT_SATISFIABLE, "offset \(offset) is past the end (\(record.size) bytes)")
                }
                try handle.seek(toOffset: offset)
                let reader = FSReader(handle: handle, remaining: min(length, record.size - offset))
                api.storage_set_handle(call.pointer, Unmanaged.passRetained(reader).toOpaque())
                complete(call, record)
            } catch {
                fail(call, error)
            }
        }
    }
    vtable.get_read = { instance, handle, maxBytes, call in
        let (backend, reader, call) = (fs(instance), Pointer(raw: handle), Call(pointer: call))
        backend.run {
            let reader = Unmanaged<FSReader>.fromOpaque(reader.raw!).takeUnretainedValue()
            do {
                let count = Int(min(maxBytes, reader.remaining, 1 << 20))
                let data = count == 0 ? Data() : (try reader.handle.read(upToCount: count) ?? Data())
                reader.remaining -= UInt64(data.count)
                data.withUnsafeBytes { raw in
                    api.storage_deliver(call.pointer, ns_bytes(ptr: raw.bindMemory(to: UInt8.self).baseAddress, len: UInt64(raw.count)))
                }
                complete(call, nil)
            } catch {
                fail(call, FSError(NS_ERR_IO, "read failed: \(error.localizedDescription)"))
            }
        }
    }
    vtable.get_close = { _, handle in
        guard let handle else { return }
        try? Unmanaged<FSReader>.fromOpaque(handle).takeRetainedValue().handle.close()
    }
    vtable.head = { instance, key, call in
        let (backend, key, call) = (fs(instance), key.string, Call(pointer: call))
        backend.run {
            do {
                let (record, handle) = try backend.openObject(key)
                try? handle.close()
                complete(call, record)
            } catch {
                fail(call, error)
            }
        }
    }
    vtable.list = { instance, prefix, token, limit, call in
        let (backend, prefix, token, call) = (fs(instance), prefix.string, token.string, Call(pointer: call))
        backend.run {
            let (page, more) = backend.list(prefix: prefix, after: token, limit: Int(max(1, min(limit, 1000))))
            for (key, record) in page {
                withInfo(record) { info in withNSStr(key) { api.storage_list_entry(call.pointer, $0, info) } }
            }
            if more, let last = page.last?.0 { withNSStr(last) { api.storage_list_next(call.pointer, $0) } }
            complete(call, nil)
        }
    }
    vtable.remove = { instance, key, call in
        let (backend, key, call) = (fs(instance), key.string, Call(pointer: call))
        backend.run {
            do {
                try backend.remove(key)
                complete(call, nil)
            } catch {
                fail(call, error)
            }
        }
    }
    let vtablePointer = UnsafeMutablePointer<ns_storage_vtable>.allocate(capacity: 1)
    vtablePointer.initialize(to: vtable)

    var info = ns_plugin_info()
    info.struct_size = UInt32(MemoryLayout<ns_plugin_info>.size)
    info.abi_major = UInt32(NS_ABI_MAJOR)
    info.abi_minor = UInt32(NS_ABI_MINOR)
    info.kind = ns_plugin_kind(NS_KIND_STORAGE)
    info.name = PluginOffer.permanent("fs")
    info.version = PluginOffer.permanent("1.0.0")
    info.description = PluginOffer.permanent("local filesystem, laid out as an S3 bucket (<root>/<bucket>/<key>)")
    info.`init` = { _, _, config, outInstance, slot in
        guard let outInstance else { return ns_status(NS_ERR_INVALID_ARGUMENT) }
        do {
            let bytes = config.ptr.map { Data(bytes: $0, count: Int(config.len)) } ?? Data()
            outInstance.pointee = Unmanaged.passRetained(try FSBackend(config: bytes)).toOpaque()
            return ns_status(NS_OK)
        } catch let failure as PluginFailure {
            withNSStr(failure.message) { api.error_set(slot, $0) }
            return failure.status
        } catch {
            withNSStr("config: not a JSON object") { api.error_set(slot, $0) }
            return ns_status(NS_ERR_CONFIG)
        }
    }
    info.destroy = { instance in
        guard let instance else { return }
        Unmanaged<FSBackend>.fromOpaque(instance).release()
    }
    info.vtable = UnsafeRawPointer(vtablePointer)
    let pointer = UnsafeMutablePointer<ns_plugin_info>.allocate(capacity: 1)
    pointer.initialize(to: info)
    return UnsafePointer(pointer)
}()

private func fs(_ instance: UnsafeMutableRawPointer?) -> FSBackend {
    Unmanaged<FSBackend>.fromOpaque(instance!).takeUnretainedValue()
}

/// Lends a record to C as `ns_object_info`.
private func withInfo<Result>(_ record: FSObjectMeta, _ body: (UnsafePointer<ns_object_info>) -> Result) -> Result {
    withNSStr(record.contentType) { type in
        withNSStr(record.sha256) { sha in
            var info = ns_object_info(struct_size: UInt32(MemoryLayout<ns_object_info>.size), size: record.size,
                                      modified_unix_ms: record.modifiedUnixMs, content_type: type, etag: sha, sha256_hex: sha)
            return body(&info)
        }
    }
}

private func complete(_ call: Call, _ record: FSObjectMeta?) {
    withNSStr("") { message in
        if let record {
            withInfo(record) { api.storage_complete(call.pointer, ns_status(NS_OK), message, $0) }
        } else {
            api.storage_complete(call.pointer, ns_status(NS_OK), message, nil)
        }
    }
}

private func fail(_ call: Call, _ error: any Error) {
    let failure = error as? FSError ?? FSError(NS_ERR_IO, error.localizedDescription)
    withNSStr(failure.message) { api.storage_complete(call.pointer, failure.status, $0, nil) }
}
