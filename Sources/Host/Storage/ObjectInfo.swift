import NorthstarPluginKit
import PluginAPI

/// What a storage backend knows of one object (`ns_object_info`, copied).
public struct ObjectInfo: Sendable, Equatable {
    public var size: UInt64
    public var modifiedUnixMs: Int64
    public var contentType: String
    public var etag: String
    public var sha256: String

    init(size: UInt64 = UInt64.max, modifiedUnixMs: Int64 = 0, contentType: String = "", etag: String = "", sha256: String = "") {
        self.size = size
        self.modifiedUnixMs = modifiedUnixMs
        self.contentType = contentType
        self.etag = etag
        self.sha256 = sha256
    }

    init(_ info: UnsafePointer<ns_object_info>) {
        self.init(size: info.pointee.size, modifiedUnixMs: info.pointee.modified_unix_ms,
                  contentType: info.pointee.content_type.string, etag: info.pointee.etag.string,
                  sha256: info.pointee.sha256_hex.string)
    }

    /// Lends the info to C for the duration of `body`.
    func withC<Result>(_ body: (UnsafePointer<ns_object_info>) -> Result) -> Result {
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
