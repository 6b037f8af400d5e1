import PluginAPI

/// What a Swift storage plugin implements; `StoragePluginExport` turns it
/// into the C ABI. Every method may take its time (it is awaited on a task,
/// never on the host's event loop); each either returns or throws a
/// `PluginFailure` whose status the host maps to a stable HTTP answer
/// (NS_ERR_NOT_FOUND 404, NS_ERR_RANGE_NOT_SATISFIABLE 416,
/// NS_ERR_UNAVAILABLE 503, NS_ERR_TIMEOUT 504, NS_ERR_CONFLICT 409, others 502).
///
/// Keys come from the host, already built and checked; a backend stores them
/// as given.
public protocol StorageProvider: AnyObject, Sendable {
    static var name: String { get }
    static var version: String { get }
    static var summary: String { get }

    init(config: [UInt8], host: HostLink) throws

    /// Begins an upload; nothing is visible under `key` until `putFinish`.
    func putOpen(key: String, contentType: String, size: UInt64?) async throws -> StorageUpload
    /// Appends one chunk; the host sends the next only after this returns.
    func putWrite(_ upload: StorageUpload, _ chunk: [UInt8]) async throws
    /// Makes the object visible, whole, and describes it (with its SHA-256).
    func putFinish(_ upload: StorageUpload) async throws -> StoredObject
    /// Abandons an upload: nothing becomes visible. Must not block.
    func putAbort(_ upload: StorageUpload)

    /// Opens `length` bytes from `offset` (`UInt64.max`: to the end).
    func getOpen(key: String, offset: UInt64, length: UInt64) async throws -> (StoredObject, StorageReader)
    /// The next bytes, at most `maxBytes`; empty at the end.
    func getRead(_ reader: StorageReader, maxBytes: Int) async throws -> [UInt8]
    func getClose(_ reader: StorageReader)

    func head(key: String) async throws -> StoredObject
    /// Keys starting with `prefix`, in order, after the page token, at most
    /// `limit`; the token of the next page when there is one.
    func list(prefix: String, pageToken: String, limit: Int) async throws -> (objects: [(key: String, object: StoredObject)], next: String?)
    /// Deletes `key`; NS_ERR_NOT_FOUND when it was not there.
    func remove(key: String) async throws
}

/// A plugin's upload state: any class of its own.
public typealias StorageUpload = AnyObject
/// A plugin's reader state: any class of its own.
public typealias StorageReader = AnyObject

/// What a backend knows of one object (`ns_object_info`, as Swift values):
/// what a Swift backend reports, and what the host reads from any backend.
public struct StoredObject: Sendable, Equatable {
    public var size: UInt64
    public var modifiedUnixMs: Int64
    public var contentType: String
    public var etag: String
    public var sha256: String

    public init(size: UInt64, modifiedUnixMs: Int64 = 0, contentType: String = "", etag: String = "", sha256: String = "") {
        self.size = size
        self.modifiedUnixMs = modifiedUnixMs
        self.contentType = contentType
        self.etag = etag
        self.sha256 = sha256
    }

    /// Copies a borrowed `ns_object_info`, read at its own `struct_size`;
    /// nil when that is below the 1.0 size.
    public init?(_ info: UnsafePointer<ns_object_info>) {
        guard let fields = PluginStruct.copy(info, minimumSize: Int(NS_OBJECT_INFO_MIN_SIZE)) else { return nil }
        self.init(size: fields.size, modifiedUnixMs: fields.modified_unix_ms, contentType: fields.content_type.string,
                  etag: fields.etag.string, sha256: fields.sha256_hex.string)
    }

    /// Lends the object to C as `ns_object_info` for the duration of `body`.
    public func withInfo<Result>(_ body: (UnsafePointer<ns_object_info>) -> Result) -> Result {
        withNSStr(contentType) { type in
            withNSStr(etag) { etag in
                withNSStr(sha256) { sha in
                    var info = ns_object_info(struct_size: UInt32(MemoryLayout<ns_object_info>.size), size: size,
                                              modified_unix_ms: modifiedUnixMs, content_type: type, etag: etag, sha256_hex: sha)
                    return body(&info)
                }
            }
        }
    }
}
