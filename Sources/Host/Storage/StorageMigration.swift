import Crypto
import Foundation

/// Copies objects from one configured storage plugin to another
/// (`northstar storage migrate`), checking every byte: the SHA-256 is
/// computed while copying and must equal the source's recorded one and the
/// destination's. An object already at the destination with the same
/// SHA-256 is skipped, and uploads are atomic, so an interrupted run is
/// simply run again.
public struct StorageMigration: Sendable {
    public struct Report: Sendable {
        public var copied = 0
        public var skipped = 0
        public var failed: [(key: String, reason: String)] = []
        public var bytes: UInt64 = 0
    }

    let source: StorageBackend
    let destination: StorageBackend

    /// - Throws: `PluginLoadError` when either name is not a loaded storage plugin, or both are the same.
    public init(plugins: PluginSet, from: String, to: String, config: NorthstarConfig) throws {
        guard from != to else {
            throw PluginLoadError(file: config.source, rule: .storageBackend, message: "--from and --to name the same plugin",
                                  remedy: "name two different storage plugins of the config")
        }
        let timeout = Duration.milliseconds(config.storage.timeoutMilliseconds)
        guard let source = try plugins.storagePlugin(named: from, source: config.source, role: "--from"),
              let destination = try plugins.storagePlugin(named: to, source: config.source, role: "--to") else {
            throw PluginLoadError(file: config.source, rule: .storageBackend, message: "no storage plugin is loaded",
                                  remedy: "list both storage plugins under \"plugins\"")
        }
        self.source = StorageBackend(plugin: source, timeout: timeout)
        self.destination = StorageBackend(plugin: destination, timeout: timeout)
    }

    /// Copies every object under `prefix`; `progress` gets one line per object.
    public func run(prefix: String, progress: (String) -> Void) async throws -> Report {
        var report = Report()
        var token = ""
        repeat {
            let page = try await source.list(prefix: prefix, pageToken: token, limit: 500)
            for entry in page.entries {
                do {
                    if let bytes = try await copy(entry.key) {
                        report.copied += 1
                        report.bytes += bytes
                        progress("copied  \(entry.key) (\(bytes) bytes)")
                    } else {
                        report.skipped += 1
                        progress("skipped \(entry.key) (already there, same SHA-256)")
                    }
                } catch {
                    let reason = (error as? KernelError)?.message ?? "\(error)"
                    report.failed.append((entry.key, reason))
                    progress("FAILED  \(entry.key): \(reason)")
                }
            }
            token = page.next ?? ""
        } while !token.isEmpty
        return report
    }

    /// Copies one object; nil when the destination already holds it.
    private func copy(_ key: String) async throws -> UInt64? {
        let wanted = try await source.head(key: key)
        if !wanted.sha256.isEmpty, let present = try? await destination.head(key: key),
           present.sha256 == wanted.sha256, present.size == wanted.size {
            return nil
        }
        let (info, reader) = try await source.getOpen(key: key, offset: 0, length: UInt64.max)
        defer { source.getClose(reader) }
        let upload = try await destination.putOpen(key: key, info: ObjectInfo(size: info.size, contentType: info.contentType))
        var hasher = SHA256()
        var size: UInt64 = 0
        do {
            while true {
                let chunk = try await source.getRead(reader, maxBytes: 1 << 20)
                if chunk.readableBytes == 0 { break }
                chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                size += UInt64(chunk.readableBytes)
                try await destination.putWrite(upload, chunk.withUnsafeReadableBytes { Array($0) })
            }
        } catch {
            destination.putAbort(upload)
            throw error
        }
        let sha = hasher.finalize().hex
        guard info.sha256.isEmpty || info.sha256 == sha, size == info.size else {
            destination.putAbort(upload)
            throw KernelError(.upstreamFailed, code: "checksum_mismatch", message: "the source's bytes do not match its recorded SHA-256; not copied")
        }
        let stored = try await destination.putFinish(upload, sent: ObjectInfo(size: size, contentType: info.contentType, sha256: sha))
        guard stored.sha256.isEmpty || stored.sha256 == sha, stored.size == size else {
            try? await destination.remove(key: key)
            throw KernelError(.upstreamFailed, code: "checksum_mismatch", message: "the destination stored different bytes; removed")
        }
        return size
    }
}
