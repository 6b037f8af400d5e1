import Crypto
import Foundation
import NorthstarPluginKit
import PluginAPI

/// The `fs` storage backend: objects on the local filesystem laid out as an
/// S3 bucket would be, so the folder syncs to a real bucket unchanged.
///
///     <root>/<bucket>/<key>                               the object's bytes, nothing else
///     <root>/.northstar/meta/<bucket>/<h[0..2]>/<h>.json  content type, size, SHA-256; h = SHA-256 of the key
///     <root>/.northstar/tmp/                               uploads in progress
///
/// The metadata lives in its own tree rather than next to each file so that
/// `<root>/<bucket>` holds exactly the bucket's objects, and it is named by
/// the key's hash so that any name an object may have (up to 255 bytes a
/// segment) fits, and no metadata file can clash with another key's folder.
/// An object may not be both a file and a folder (`f` and `f/g`): either
/// order is refused as a conflict, as it would be on a real filesystem sync.
/// An upload is written
/// to a temporary file, fsynced, and renamed into place (metadata first), so
/// a crash never leaves a torn or partial object visible; temporaries left
/// by a crash are removed at start.
///
/// File work runs on a queue of its own, never on the host's threads.
final class FSBackend: StorageProvider, @unchecked Sendable {
    static let name = "fs"
    static let version = "1.0.0"
    static let summary = "local filesystem, laid out as an S3 bucket (<root>/<bucket>/<key>)"

    let objects: URL
    let meta: URL
    let temporary: URL
    private let queue = DispatchQueue(label: "northstar.fs", attributes: .concurrent)
    /// Publishing (metadata, then bytes) and reading both under this lock,
    /// so a reader never pairs one version's bytes with another's metadata.
    private let publishing = NSLock()

    init(config: [UInt8], host: HostLink) throws {
        let object = try (config.isEmpty ? [:] : JSONSerialization.jsonObject(with: Data(config))) as? [String: Any] ?? [:]
        let known: Set = ["root", "bucket"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw PluginFailure(status: Int32(NS_ERR_CONFIG), message: "unknown key \"\(unknown)\" (known: bucket, root)")
        }
        guard let root = object["root"] as? String else {
            throw PluginFailure(status: Int32(NS_ERR_CONFIG), message: "root: required, an absolute directory path")
        }
        // The host resolves `${data_dir}` to an absolute path; a relative one
        // written here would depend on where the node was started from.
        guard root.hasPrefix("/") else {
            throw PluginFailure(status: Int32(NS_ERR_CONFIG),
                                message: "root: \"\(root)\" is relative; give an absolute path, e.g. \"${data_dir}/objects\"")
        }
        let bucket = object["bucket"] as? String ?? "northstar"
        guard (3...63).contains(bucket.count), bucket.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || "-.".contains($0)) }) else {
            throw PluginFailure(status: Int32(NS_ERR_CONFIG), message: "bucket: 3 to 63 of a-z 0-9 - . (an S3 bucket name)")
        }
        let rootURL = URL(fileURLWithPath: root)
        objects = rootURL.appendingPathComponent(bucket)
        meta = rootURL.appendingPathComponent(".northstar/meta/\(bucket)")
        temporary = rootURL.appendingPathComponent(".northstar/tmp")
        do {
            for directory in [objects, meta, temporary] {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            }
            // Uploads a crash interrupted: never visible, now gone.
            for leftover in try FileManager.default.contentsOfDirectory(atPath: temporary.path) {
                try? FileManager.default.removeItem(at: temporary.appendingPathComponent(leftover))
            }
        } catch {
            throw PluginFailure(status: Int32(NS_ERR_CONFIG), message: "root: cannot use \(root): \(error.localizedDescription)")
        }
    }

    /// Defence in depth: the host builds keys, but a key that could leave
    /// the bucket directory is refused here too.
    static func isSafe(_ key: String) -> Bool {
        !key.isEmpty && key.utf8.count <= 1024 && !key.hasPrefix("/") && !key.contains("\0") && !key.contains("\\")
            && key.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
    }

    func objectURL(_ key: String) -> URL { objects.appendingPathComponent(key) }
    func metaURL(_ key: String) -> URL {
        let hash = SHA256.hash(data: Data(key.utf8)).hex
        return meta.appendingPathComponent(String(hash.prefix(2))).appendingPathComponent(hash + ".json")
    }

    /// Where metadata was kept before it was named by hash; still read, so
    /// objects written by an earlier version keep their content type and digest.
    func legacyMetaURL(_ key: String) -> URL { meta.appendingPathComponent(key + ".json") }

    /// Refuses a key that would make an object and a folder share a name:
    /// one of its parent folders is an object, or the key is a folder.
    func checkNoConflict(_ key: String) throws {
        var folder = ""
        for segment in key.split(separator: "/").dropLast() {
            folder += folder.isEmpty ? String(segment) : "/\(segment)"
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: objectURL(folder).path, isDirectory: &isDirectory), !isDirectory.boolValue {
                throw FSError(NS_ERR_CONFLICT, "an object already uses a folder name of this key")
            }
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: objectURL(key).path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw FSError(NS_ERR_CONFLICT, "a folder of objects already uses this name")
        }
    }

    /// Runs file work on the backend's queue and awaits it.
    private func onQueue<T>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try work() }) }
        }
    }

    // MARK: StorageProvider

    func putOpen(key: String, contentType: String, size: UInt64?) async throws -> StorageUpload {
        try await onQueue { try self.createUpload(key: key, contentType: contentType) }
    }

    func putWrite(_ upload: StorageUpload, _ chunk: [UInt8]) async throws {
        let upload = upload as! FSUpload
        try await onQueue {
            do {
                try upload.handle.write(contentsOf: chunk)
            } catch {
                throw FSError(NS_ERR_IO, "write failed: \(error.localizedDescription)")
            }
            upload.hasher.update(data: chunk)
            upload.size += UInt64(chunk.count)
        }
    }

    func putFinish(_ upload: StorageUpload) async throws -> StoredObject {
        let upload = upload as! FSUpload
        return try await onQueue { try self.publish(upload).stored }
    }

    func putAbort(_ upload: StorageUpload) { (upload as! FSUpload).abort() }

    func getOpen(key: String, offset: UInt64, length: UInt64) async throws -> (StoredObject, StorageReader) {
        try await onQueue {
            let (record, handle) = try self.openObject(key)
            guard offset < record.size || (offset == 0 && record.size == 0) else {
                try? handle.close()
                throw FSError(NS_ERR_RANGE_NOT_SATISFIABLE, "offset \(offset) is past the end (\(record.size) bytes)")
            }
            try handle.seek(toOffset: offset)
            return (record.stored, FSReader(handle: handle, remaining: min(length, record.size - offset)))
        }
    }

    func getRead(_ reader: StorageReader, maxBytes: Int) async throws -> [UInt8] {
        let reader = reader as! FSReader
        return try await onQueue {
            let count = Int(min(UInt64(maxBytes), reader.remaining))
            guard count > 0 else { return [] }
            do {
                let data = try reader.handle.read(upToCount: count) ?? Data()
                reader.remaining -= UInt64(data.count)
                return [UInt8](data)
            } catch {
                throw FSError(NS_ERR_IO, "read failed: \(error.localizedDescription)")
            }
        }
    }

    func getClose(_ reader: StorageReader) { try? (reader as! FSReader).handle.close() }

    func head(key: String) async throws -> StoredObject {
        try await onQueue {
            let (record, handle) = try self.openObject(key)
            try? handle.close()
            return record.stored
        }
    }

    func list(prefix: String, pageToken: String, limit: Int) async throws -> (objects: [(key: String, object: StoredObject)], next: String?) {
        try await onQueue {
            let (page, more) = self.keys(prefix: prefix, after: pageToken, limit: limit)
            return (page.map { ($0.0, $0.1.stored) }, more ? page.last?.0 : nil)
        }
    }

    func remove(key: String) async throws {
        try await onQueue { try self.delete(key) }
    }

    // MARK: Files

    func createUpload(key: String, contentType: String) throws -> FSUpload {
        guard Self.isSafe(key) else { throw FSError(NS_ERR_INVALID_ARGUMENT, "the key is not a safe relative path") }
        try checkNoConflict(key)  // before a byte is sent; checked again when published
        let url = temporary.appendingPathComponent(UUID().uuidString)
        guard FileManager.default.createFile(atPath: url.path, contents: nil), let handle = FileHandle(forWritingAtPath: url.path) else {
            throw FSError(NS_ERR_IO, "cannot create a temporary file (disk full or not writable?)")
        }
        return FSUpload(key: key, contentType: contentType, temporary: url, handle: handle)
    }

    /// Makes an upload visible, or removes every trace of it: a failure at
    /// any step leaves no temporary file behind.
    func publish(_ upload: FSUpload) throws -> FSObjectMeta {
        let metaTemporary = temporary.appendingPathComponent(UUID().uuidString + ".json")
        do {
            try upload.handle.synchronize()
            try upload.handle.close()
            let record = FSObjectMeta(size: upload.size, contentType: upload.contentType, sha256: upload.hasher.finalize().hex,
                                      modifiedUnixMs: Int64(Date().timeIntervalSince1970 * 1000))
            let target = objectURL(upload.key), metaTarget = metaURL(upload.key)
            try durableWrite(try JSONEncoder().encode(record), to: metaTemporary)
            try publishing.withLock {
                try checkNoConflict(upload.key)
                try makeFolder(target.deletingLastPathComponent())
                try makeFolder(metaTarget.deletingLastPathComponent())
                try rename(metaTemporary, metaTarget)
                try rename(upload.temporary, target)
                try? FileManager.default.removeItem(at: legacyMetaURL(upload.key))
            }
            syncDirectory(target.deletingLastPathComponent())
            syncDirectory(metaTarget.deletingLastPathComponent())
            return record
        } catch {
            try? FileManager.default.removeItem(at: metaTemporary)
            upload.abort()
            throw error
        }
    }

    private func makeFolder(_ url: URL) throws {
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw FSError(NS_ERR_IO, "cannot create a folder for the object (disk full or not writable?)")
        }
    }

    private func durableWrite(_ data: Data, to url: URL) throws {
        guard FileManager.default.createFile(atPath: url.path, contents: data), let handle = FileHandle(forWritingAtPath: url.path) else {
            throw FSError(NS_ERR_IO, "cannot write \(url.lastPathComponent)")
        }
        try handle.synchronize()
        try handle.close()
    }

    private func rename(_ from: URL, _ to: URL) throws {
        guard Foundation.rename(from.path, to.path) == 0 else {
            throw FSError(NS_ERR_IO, "rename failed: \(String(cString: strerror(errno)))")
        }
    }

    /// fsync a directory so a rename in it survives a power cut.
    private func syncDirectory(_ url: URL) {
        let descriptor = open(url.path, O_RDONLY)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }

    // MARK: Reads

    /// The object's metadata and an open handle, read as one version.
    func openObject(_ key: String) throws -> (FSObjectMeta, FileHandle) {
        guard Self.isSafe(key) else { throw FSError(NS_ERR_NOT_FOUND, "no such object") }
        return try publishing.withLock {
            // A folder of objects is not an object (opening one would succeed on Linux).
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: objectURL(key).path, isDirectory: &isDirectory), !isDirectory.boolValue,
                  let handle = FileHandle(forReadingAtPath: objectURL(key).path) else { throw FSError(NS_ERR_NOT_FOUND, "no such object") }
            let size = (try? handle.seekToEnd()) ?? 0
            return (readMeta(key, size: size), handle)
        }
    }

    /// The recorded metadata; for a file put there by hand, what can be known.
    func readMeta(_ key: String, size: UInt64) -> FSObjectMeta {
        for url in [metaURL(key), legacyMetaURL(key)] {
            if let data = try? Data(contentsOf: url), let record = try? JSONDecoder().decode(FSObjectMeta.self, from: data),
               record.size == size {
                return record
            }
        }
        let modified = (try? FileManager.default.attributesOfItem(atPath: objectURL(key).path)[.modificationDate] as? Date) ?? Date()
        return FSObjectMeta(size: size, contentType: "application/octet-stream", sha256: "",
                            modifiedUnixMs: Int64(modified.timeIntervalSince1970 * 1000))
    }

    func delete(_ key: String) throws {
        guard Self.isSafe(key) else { throw FSError(NS_ERR_NOT_FOUND, "no such object") }
        try publishing.withLock {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: objectURL(key).path, isDirectory: &isDirectory), !isDirectory.boolValue else {
                throw FSError(NS_ERR_NOT_FOUND, "no such object")
            }
            try FileManager.default.removeItem(at: objectURL(key))
            try? FileManager.default.removeItem(at: metaURL(key))
            try? FileManager.default.removeItem(at: legacyMetaURL(key))
        }
        // S3 has no folders: drop the ones this delete emptied.
        for (base, file) in [(objects, objectURL(key)), (meta, legacyMetaURL(key)), (meta, metaURL(key))] {
            var folder = file.deletingLastPathComponent()
            while folder.path.count > base.path.count, (try? FileManager.default.contentsOfDirectory(atPath: folder.path))?.isEmpty == true {
                try? FileManager.default.removeItem(at: folder)
                folder.deleteLastPathComponent()
            }
        }
    }

    /// Keys starting with `prefix`, in order, after `token`, at most `limit`,
    /// and whether more follow.
    func keys(prefix: String, after token: String, limit: Int) -> ([(String, FSObjectMeta)], Bool) {
        // Walk only the deepest folder the prefix names.
        let folderPart = prefix.contains("/") ? String(prefix[..<prefix.lastIndex(of: "/")!]) : ""
        let start = folderPart.isEmpty ? objects : objects.appendingPathComponent(folderPart)
        guard folderPart.isEmpty || Self.isSafe(folderPart),
              let walker = FileManager.default.enumerator(at: start, includingPropertiesForKeys: [.isRegularFileKey]) else { return ([], false) }
        var keys: [String] = []
        let base = objects.standardizedFileURL.path + "/"
        for case let url as URL in walker {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { continue }
            let key = String(url.standardizedFileURL.path.dropFirst(base.count))
            if key.hasPrefix(prefix) && key > token { keys.append(key) }
        }
        keys.sort()
        let page = keys.prefix(limit).map { key -> (String, FSObjectMeta) in
            let size = ((try? FileManager.default.attributesOfItem(atPath: objectURL(key).path)[.size]) as? NSNumber)?.uint64Value ?? 0
            return (key, readMeta(key, size: size))
        }
        return (page, keys.count > limit)
    }
}

/// What the plugin records of each object.
struct FSObjectMeta: Codable {
    var size: UInt64
    var contentType: String
    var sha256: String
    var modifiedUnixMs: Int64

    var stored: StoredObject {
        StoredObject(size: size, modifiedUnixMs: modifiedUnixMs, contentType: contentType, etag: sha256, sha256: sha256)
    }
}

/// An upload in progress: a temporary file and the running SHA-256.
final class FSUpload: @unchecked Sendable {
    let key: String
    let contentType: String
    let temporary: URL
    let handle: FileHandle
    var hasher = SHA256()
    var size: UInt64 = 0

    init(key: String, contentType: String, temporary: URL, handle: FileHandle) {
        self.key = key
        self.contentType = contentType
        self.temporary = temporary
        self.handle = handle
    }

    func abort() {
        try? handle.close()
        try? FileManager.default.removeItem(at: temporary)
    }
}

/// An open read: the handle and how many bytes are left to give.
final class FSReader: @unchecked Sendable {
    let handle: FileHandle
    var remaining: UInt64
    init(handle: FileHandle, remaining: UInt64) {
        self.handle = handle
        self.remaining = remaining
    }
}

/// A failure with the status the host maps to an HTTP answer.
func FSError(_ status: Int, _ message: String) -> PluginFailure {
    PluginFailure(status: Int32(status), message: message)
}

extension SHA256.Digest {
    var hex: String { map { String(format: "%02x", $0) }.joined() }
}
