import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Instrumentation
import NorthstarPluginKit
import PluginAPI

/// A storage plugin, called the Swift way: each entry of its vtable as an
/// async function that completes once, or fails with a `KernelError` that
/// names a stable code (404, 416, 502, 503, 504), never hanging past the
/// configured timeout.
public final class StorageBackend: Sendable {
    let plugin: PluginInstance
    let timeout: Duration
    /// Where each call's duration and failures are counted (`/metrics`).
    private let metrics: Metrics?
    /// The plugin's vtable, read once at its own size (the loader checked it).
    private let vtable: ns_storage_vtable
    /// Whether the log already said this backend's uploads go unverified.
    private let unverifiedWarned = NIOLockedValueBox(false)

    init(plugin: PluginInstance, timeout: Duration, metrics: Metrics? = nil) {
        self.plugin = plugin
        self.timeout = timeout
        self.metrics = metrics
        let table = plugin.library.info.pointee.vtable!.assumingMemoryBound(to: ns_storage_vtable.self)
        vtable = PluginStruct.copy(table, minimumSize: Int(NS_STORAGE_VTABLE_MIN_SIZE))!
    }

    public var name: String { plugin.name }

    /// Runs one entry and waits for its completion.
    private func call(_ what: String, lent: [UInt8] = [],
                      releaseLateHandle: @escaping @Sendable (UnsafeMutableRawPointer) -> Void = { _ in },
                      undoLateSuccess: @escaping @Sendable (ObjectInfo?) -> Void = { _ in },
                      _ start: (OpaquePointer) -> Void) async throws -> StorageCall.Result {
        try await Traced.span("storage.\(what)", ["northstar.storage_backend": name]) { _ in
            try await callUntraced(what, lent: lent, releaseLateHandle: releaseLateHandle, undoLateSuccess: undoLateSuccess, start)
        }
    }

    private func callUntraced(_ what: String, lent: [UInt8], releaseLateHandle: @escaping @Sendable (UnsafeMutableRawPointer) -> Void,
                              undoLateSuccess: @escaping @Sendable (ObjectInfo?) -> Void,
                              _ start: (OpaquePointer) -> Void) async throws -> StorageCall.Result {
        let call = StorageCall(lent: lent, releaseLateHandle: releaseLateHandle, undoLateSuccess: undoLateSuccess)
        let started = ContinuousClock.now
        let labels = [("backend", name), ("operation", what)]
        // The plugin's requests (S3, GCS) made from inside the entry carry this span's trace.
        Traced.pluginCall(InstrumentationContext.current) { start(call.retainForPlugin()) }
        let answer = await call.result(timeout: timeout)
        metrics?.record("northstar_storage_call_duration_seconds", labels, duration: ContinuousClock.now - started)
        guard let result = answer else {
            metrics?.increment("northstar_storage_errors_total", labels + [("code", "storage_timeout")])
            if let cancel = vtable.cancel { cancel(plugin.instance, OpaquePointer(Unmanaged.passUnretained(call).toOpaque())) }
            throw KernelError(.timeout, code: "storage_timeout",
                           message: "the \(name) storage backend did not answer \(what) within \(timeout)")
        }
        guard result.status == ns_status(NS_OK) else {
            let error = Self.error(result.status, result.message, backend: name, what: what)
            metrics?.increment("northstar_storage_errors_total", labels + [("code", error.code)])
            throw error
        }
        return result
    }

    /// The client learns which backend failed and how; what the plugin said
    /// (paths, socket errors) goes to the log only.
    static func error(_ status: ns_status, _ message: String, backend: String, what: String) -> KernelError {
        let detail = String(message.prefix(500))
        return switch Int(status) {
        case Int(NS_ERR_NOT_FOUND): KernelError(.notFound, code: "not_found", message: "no such object")
        case Int(NS_ERR_RANGE_NOT_SATISFIABLE): KernelError(.rangeNotSatisfiable, code: "range_not_satisfiable",
                                                             message: "the range starts past the object's end")
        case Int(NS_ERR_CONFLICT), Int(NS_ERR_ALREADY_EXISTS):
            KernelError(.conflict, code: "path_conflict", message: "the path collides with another object's (an object and a folder of the same name)",
                        logDetail: detail)
        case Int(NS_ERR_UNAVAILABLE): KernelError(.unavailable, code: "storage_unavailable",
                                                  message: "the \(backend) storage backend is unavailable (\(what))", logDetail: detail)
        case Int(NS_ERR_TIMEOUT): KernelError(.timeout, code: "storage_timeout",
                                              message: "the \(backend) storage backend timed out (\(what))", logDetail: detail)
        default: KernelError(.upstreamFailed, code: "storage_error",
                             message: "the \(backend) storage backend failed (\(what))", logDetail: detail)
        }
    }

    // MARK: Uploads

    /// An open upload; abort it unless it finished (forgotten, it is aborted).
    struct Upload: Sendable {
        let key: String
        let state: StorageHandle
        var handle: UnsafeMutableRawPointer? { state.handle }
    }

    func putOpen(key: String, info: ObjectInfo) async throws -> Upload {
        let (instance, vtable) = (plugin.instance, self.vtable)
        let plugin = self.plugin
        let result = try await call("put_open", releaseLateHandle: { [vtable] in vtable.put_abort(plugin.instance, $0) }) { call in
            withNSStr(key) { key in info.withInfo { vtable.put_open(instance, key, $0, call) } }
        }
        return Upload(key: key, state: StorageHandle(result.handle) { [vtable] in vtable.put_abort(plugin.instance, $0) })
    }

    func putWrite(_ upload: Upload, _ chunk: [UInt8]) async throws {
        let (instance, vtable) = (plugin.instance, self.vtable)
        _ = try await call("put_write", lent: chunk) { call in
            chunk.withUnsafeBufferPointer { vtable.put_write(instance, upload.handle, ns_bytes(ptr: $0.baseAddress, len: UInt64($0.count)), call) }
        }
    }

    /// Finishes an upload, telling a 1.4 backend what was sent (`sent`: the
    /// size and SHA-256 the host counted) so that it stores the digest.
    func putFinish(_ upload: Upload, sent: ObjectInfo) async throws -> ObjectInfo {
        let (instance, vtable) = (plugin.instance, self.vtable)
        guard upload.state.claim() else {
            throw Self.error(ns_status(NS_ERR_INTERNAL), "the upload was already finished or aborted", backend: name, what: "put_finish")
        }
        // Past the timeout the client is told 504: an object the backend
        // still finishes afterwards must not appear.
        let result = try await call("put_finish", undoLateSuccess: { [self] info in
            Task { await removeLateObject(key: upload.key, finished: info) }
        }) { call in
            if let checked = vtable.put_finish_checked {
                sent.withInfo { checked(instance, upload.handle, $0, call) }
            } else {
                vtable.put_finish(instance, upload.handle, call)
            }
        }
        guard let info = result.info else { throw Self.error(ns_status(NS_ERR_INTERNAL), "put_finish gave no object info", backend: name, what: "put_finish") }
        if info.sha256.isEmpty, unverifiedWarned.withLockedValue({ warned in defer { warned = true }; return !warned }) {
            Logger(label: "northstar.storage").warning(
                "the storage backend reports no SHA-256 for what it stored: its uploads are not verified, and ETags of later reads differ from the upload's (implement put_finish_checked, ABI 1.4)",
                metadata: ["backend": "\(name)"])
        }
        return info
    }

    /// Abandons an upload; a no-op once it finished or was aborted.
    func putAbort(_ upload: Upload) {
        if upload.state.claim() { vtable.put_abort(plugin.instance, upload.handle) }
    }

    /// Removes an object whose upload finished after the host answered its
    /// client with a failure, unless the key already holds other bytes (a
    /// retry that succeeded since).
    private func removeLateObject(key: String, finished: ObjectInfo?) async {
        let logger = Logger(label: "northstar.storage")
        do {
            let present = try await head(key: key)
            if let finished, !finished.etag.isEmpty, present.etag != finished.etag { return }
            try await remove(key: key)
            logger.warning("an upload finished after its timeout had been answered; its object was removed",
                           metadata: ["backend": "\(name)", "key": "\(key)"])
        } catch let error as KernelError where error.code == "not_found" {
            return
        } catch {
            logger.error("an upload finished after its timeout, and its object could not be removed",
                         metadata: ["backend": "\(name)", "key": "\(key)", "error": "\(error)"])
        }
    }

    // MARK: Reads

    /// An open reader; closed once (forgotten, it is closed).
    struct Reader: Sendable {
        let state: StorageHandle
        var handle: UnsafeMutableRawPointer? { state.handle }
    }

    func getOpen(key: String, offset: UInt64, length: UInt64) async throws -> (ObjectInfo, Reader) {
        let (instance, vtable) = (plugin.instance, self.vtable)
        let plugin = self.plugin
        let result = try await call("get_open", releaseLateHandle: { [vtable] in vtable.get_close(plugin.instance, $0) }) { call in
            withNSStr(key) { vtable.get_open(instance, $0, offset, length, call) }
        }
        guard let info = result.info else {
            if let handle = result.handle { vtable.get_close(instance, handle) }
            throw Self.error(ns_status(NS_ERR_INTERNAL), "get_open gave no object info", backend: name, what: "get_open")
        }
        return (info, Reader(state: StorageHandle(result.handle) { [vtable] in vtable.get_close(plugin.instance, $0) }))
    }

    /// The next bytes; empty at the end.
    func getRead(_ reader: Reader, maxBytes: UInt64) async throws -> ByteBuffer {
        let (instance, vtable) = (plugin.instance, self.vtable)
        return try await call("get_read") { vtable.get_read(instance, reader.handle, maxBytes, $0) }.bytes
    }

    /// Closes a reader; a no-op the second time.
    func getClose(_ reader: Reader) {
        if reader.state.claim() { vtable.get_close(plugin.instance, reader.handle) }
    }

    // MARK: Metadata

    func head(key: String) async throws -> ObjectInfo {
        let (instance, vtable) = (plugin.instance, self.vtable)
        let result = try await call("head") { call in withNSStr(key) { vtable.head(instance, $0, call) } }
        guard let info = result.info else { throw Self.error(ns_status(NS_ERR_NOT_FOUND), "", backend: name, what: "head") }
        return info
    }

    func list(prefix: String, pageToken: String, limit: UInt32) async throws -> (entries: [(key: String, info: ObjectInfo)], next: String?) {
        let (instance, vtable) = (plugin.instance, self.vtable)
        let result = try await call("list") { call in
            withNSStr(prefix) { prefix in withNSStr(pageToken) { vtable.list(instance, prefix, $0, limit, call) } }
        }
        return (result.entries, result.nextPageToken.flatMap { $0.isEmpty ? nil : $0 })
    }

    func remove(key: String) async throws {
        let (instance, vtable) = (plugin.instance, self.vtable)
        _ = try await call("remove") { call in withNSStr(key) { vtable.remove(instance, $0, call) } }
    }
}
