import NorthstarPluginKit
import PluginAPI

/// A download from a cloud bucket: ranged GETs of `readAhead` bytes, each
/// pinned to the version opened (`version`: an ETag or a generation), handed
/// out in the host's chunk sizes.
public final class RangedReader: @unchecked Sendable {
    public let key: String
    public let version: String
    private var position: UInt64
    private let end: UInt64
    private var buffered: [UInt8] = []

    /// Opens `length` bytes from `offset` of `object` (`UInt64.max`: to the end).
    /// - Throws: NS_ERR_RANGE_NOT_SATISFIABLE when `offset` is past the end.
    public init(key: String, object: StoredObject, offset: UInt64, length: UInt64) throws {
        guard offset < object.size || (offset == 0 && object.size == 0) else {
            throw PluginFailure(status: Int32(NS_ERR_RANGE_NOT_SATISFIABLE), message: "offset \(offset) is past the end (\(object.size) bytes)")
        }
        self.key = key
        version = object.etag
        position = offset
        end = length == UInt64.max ? object.size : min(object.size, offset + length)
    }

    /// The next bytes (empty at the end); `fetch(first, last)` gets an
    /// inclusive byte range of this version when the buffer runs dry.
    public func read(maxBytes: Int, readAhead: Int, fetch: (UInt64, UInt64) async throws -> [UInt8]) async throws -> [UInt8] {
        if buffered.isEmpty && position < end {
            buffered = try await fetch(position, min(end, position + UInt64(readAhead)) - 1)
            position = buffered.isEmpty ? end : position + UInt64(buffered.count)
        }
        let count = min(maxBytes, buffered.count)
        defer { buffered.removeFirst(count) }
        return Array(buffered.prefix(count))
    }
}
