import Crypto
import Foundation
import Logging
import NIOCore

/// Artifacts and media: objects on the configured storage backend, under
/// keys the kernel builds (`ObjectKey`), each with the SHA-256 the kernel
/// computed while it streamed the upload, checked again on every whole read.
public final class Artifacts: Sendable {
    let backend: StorageBackend?
    let maxBytes: UInt64
    /// Upload chunks handed to the backend are gathered to this size.
    let chunkBytes = 1024 * 1024
    private let logger = Logger(label: "northstar.artifacts")

    public init(backend: StorageBackend?, maxBytes: UInt64) {
        self.backend = backend
        self.maxBytes = maxBytes
    }

    func storage() throws -> StorageBackend {
        guard let backend else {
            throw KernelError(.unavailable, code: "storage_not_configured",
                           message: "no storage plugin is configured (see docs/configuration.md, \"storage\")")
        }
        return backend
    }

    /// Streams `body` to `key`: refused past the size limit while it
    /// streams (nothing is left behind), visible only once whole, and
    /// answered with the size and SHA-256 the kernel counted.
    func put<Body: AsyncSequence>(key storageKey: StorageKey, contentType: String, declaredLength: UInt64?, body: Body) async throws -> ObjectInfo
        where Body.Element == ByteBuffer {
        let backend = try storage()
        let key = storageKey.raw
        if let declaredLength, declaredLength > maxBytes { throw tooLarge() }
        let upload = try await backend.putOpen(key: key, info: ObjectInfo(size: declaredLength ?? UInt64.max, contentType: contentType))
        var hasher = SHA256()
        var total: UInt64 = 0
        var pending: [UInt8] = []
        pending.reserveCapacity(chunkBytes)
        do {
            for try await buffer in body {
                total += UInt64(buffer.readableBytes)
                guard total <= maxBytes else { throw tooLarge() }
                // One memcpy: appending the buffer's view would go byte by byte.
                buffer.withUnsafeReadableBytes { raw in
                    hasher.update(bufferPointer: raw)
                    pending.append(contentsOf: raw)
                }
                if pending.count >= chunkBytes {
                    try await backend.putWrite(upload, pending)
                    pending.removeAll(keepingCapacity: true)
                }
            }
            // A body that ended short of its declared length was cut off
            // (the client left): it is not the object the client meant.
            if let declaredLength, total != declaredLength {
                throw KernelError(.invalid, code: "body_incomplete",
                               message: "the body ended after \(total) of its \(declaredLength) declared bytes; nothing was kept")
            }
            if !pending.isEmpty { try await backend.putWrite(upload, pending) }
        } catch {
            backend.putAbort(upload)
            throw error
        }
        let sha = hasher.finalize().hex
        let stored = try await backend.putFinish(upload, sent: ObjectInfo(size: total, contentType: contentType, sha256: sha))
        guard stored.size == total, stored.sha256.isEmpty || stored.sha256 == sha else {
            logger.error("stored object does not match what was sent; removed", metadata: [
                "backend": "\(backend.name)", "sent_bytes": "\(total)", "stored_bytes": "\(stored.size)"])
            try? await backend.remove(key: key)
            throw KernelError(.upstreamFailed, code: "checksum_mismatch", message: "the backend stored different bytes than were sent; nothing was kept")
        }
        var info = stored
        info.sha256 = sha
        return info
    }

    private func tooLarge() -> KernelError {
        KernelError(.tooLarge, code: "body_too_large", message: "an object is at most \(maxBytes) bytes (limits.max_object_bytes)")
    }

    func head(key: StorageKey) async throws -> ObjectInfo {
        try await storage().head(key: key.raw)
    }

    /// Opens `range` of `key` (the whole object when nil) for streaming.
    func open(key: StorageKey, range: ByteRange?) async throws -> (ObjectInfo, StorageBackend.Reader) {
        try await storage().getOpen(key: key.raw, offset: range?.offset ?? 0, length: range?.length ?? UInt64.max)
    }

    /// Writes an open reader's bytes to `write`. For a whole object the
    /// SHA-256 is checked before the last chunk goes out: on a mismatch it
    /// throws with that chunk held back, so the response is cut short and a
    /// client never takes damaged bytes for a complete object.
    func stream(_ reader: StorageBackend.Reader, expectedSHA256: String?, to write: (ByteBuffer) async throws -> Void) async throws {
        let backend = try storage()
        defer { backend.getClose(reader) }
        let verify = !(expectedSHA256 ?? "").isEmpty
        var hasher = SHA256()
        var held: ByteBuffer?
        while true {
            let chunk = try await backend.getRead(reader, maxBytes: UInt64(chunkBytes))
            if chunk.readableBytes == 0 { break }
            if verify { chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) } }
            if let held { try await write(held) }
            held = chunk
        }
        if verify, hasher.finalize().hex != expectedSHA256 {
            logger.error("checksum mismatch on read: the stored object is damaged; the response was cut short",
                         metadata: ["backend": "\(backend.name)"])
            throw KernelError(.upstreamFailed, code: "checksum_mismatch", message: "the stored object does not match its SHA-256")
        }
        if let held { try await write(held) }
    }

    func remove(key: StorageKey) async throws {
        try await storage().remove(key: key.raw)
    }

    func list(prefix: StorageKey, pageToken: String, limit: UInt32) async throws -> (entries: [(key: String, info: ObjectInfo)], next: String?) {
        try await storage().list(prefix: prefix.raw, pageToken: pageToken, limit: limit)
    }
}

extension ObjectInfo {
    /// A strong entity tag: the SHA-256 when known, else the backend's.
    var entityTag: String { "\"\(sha256.isEmpty ? etag : sha256)\"" }
}
