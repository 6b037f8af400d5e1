import Crypto
import Foundation
import NIOCore

/// The storage contract, checked against a running backend through the
/// host's own storage layer (the calls the artifact routes make): uploads
/// visible only once finished, byte-exact reads and ranges, the SHA-256
/// contract, listing in key order with pages, overwrite, delete, missing
/// keys, aborted uploads, concurrent use, and a reader left half-read.
///
/// Every key lives under `conformance/<random>/`, removed at the end.
struct StorageConformance {
    let backend: StorageBackend
    let prefix = "conformance/\(UUID().uuidString.lowercased())/"

    func run() async -> [ConformanceCheck] {
        var run = ConformanceRun()
        let small = Array("hello, northstar".utf8)
        await run.check("put then get returns the bytes, size and content type") {
            let stored = try await put("a.txt", small, contentType: "text/plain")
            try expect(stored.size == UInt64(small.count), "put_finish reported size \(stored.size), sent \(small.count)")
            let (info, bytes) = try await get("a.txt")
            try expect(bytes == small, "read back \(bytes.count) bytes that differ from the \(small.count) written")
            try expect(info.contentType == "text/plain", "content type \"\(info.contentType)\", stored \"text/plain\"")
        }
        await run.check("the SHA-256 of what was stored is reported at finish, head and get") {
            let stored = try await put("sha.bin", small)
            let digest = Self.sha256(small)
            try expect(!stored.sha256.isEmpty, "put_finish reports no SHA-256: uploads go unverified and ETags change between upload and read (implement put_finish_checked)")
            try expect(stored.sha256 == digest, "put_finish reports SHA-256 \(stored.sha256), the bytes' is \(digest)")
            try expect(try await backend.head(key: key("sha.bin")).sha256 == digest, "head reports another SHA-256 than put_finish")
            try expect(try await get("sha.bin").0.sha256 == digest, "get_open reports another SHA-256 than put_finish")
        }
        await run.check("head reports size and content type") {
            _ = try await put("h.json", small, contentType: "application/json")
            let info = try await backend.head(key: key("h.json"))
            try expect(info.size == UInt64(small.count) && info.contentType == "application/json",
                       "head gave size \(info.size), type \"\(info.contentType)\"")
        }
        await run.check("ranges: a middle slice, a length past the end, an offset past the end") {
            let bytes = (0..<1000).map { UInt8($0 % 251) }
            _ = try await put("r.bin", bytes)
            try expect(try await get("r.bin", offset: 100, length: 50).1 == Array(bytes[100..<150]), "bytes 100-149 differ")
            try expect(try await get("r.bin", offset: 990, length: 100).1 == Array(bytes[990...]), "a length past the end is not cut at the end")
            try await expectCode("range_not_satisfiable", "get_open at offset 2000 of 1000 bytes") { _ = try await get("r.bin", offset: 2000, length: 1) }
        }
        await run.check("an empty object round-trips") {
            let stored = try await put("empty", [])
            try expect(stored.size == 0, "size \(stored.size)")
            try expect(try await get("empty").1.isEmpty, "read back bytes from an empty object")
        }
        await run.check("a 3 MiB object written in 64 KiB chunks reads back whole") {
            let bytes = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            _ = try await put("big.bin", bytes, chunk: 64 << 10)
            let read = try await get("big.bin").1
            try expect(read.count == bytes.count && Self.sha256(read) == Self.sha256(bytes), "read back \(read.count) bytes, differing")
        }
        await run.check("a second put replaces the object") {
            _ = try await put("o.txt", Array("first".utf8))
            _ = try await put("o.txt", Array("second".utf8))
            try expect(try await get("o.txt").1 == Array("second".utf8), "the first bytes are still there")
        }
        await run.check("an aborted upload leaves nothing") {
            let upload = try await backend.putOpen(key: key("aborted"), info: ObjectInfo(size: UInt64.max, contentType: "text/plain"))
            try await backend.putWrite(upload, small)
            backend.putAbort(upload)
            try await expectCode("not_found", "head of an aborted upload") { _ = try await backend.head(key: key("aborted")) }
        }
        await run.check("an upload is invisible until it finishes") {
            let upload = try await backend.putOpen(key: key("pending"), info: ObjectInfo(size: UInt64.max, contentType: "text/plain"))
            try await backend.putWrite(upload, small)
            try await expectCode("not_found", "head before put_finish") { _ = try await backend.head(key: key("pending")) }
            _ = try await backend.putFinish(upload, sent: ObjectInfo(size: UInt64(small.count), sha256: Self.sha256(small)))
            _ = try await backend.head(key: key("pending"))
        }
        await run.check("list: key order, the prefix only, every page once") {
            let names = ["l/c", "l/a", "l/b", "l/d", "l/e"]
            for name in names { _ = try await put(name, Array(name.utf8)) }
            _ = try await put("m/a", small)
            var listed: [String] = []
            var token = ""
            for _ in 0..<20 {
                let page = try await backend.list(prefix: key("l/"), pageToken: token, limit: 2)
                try expect(page.entries.count <= 2, "a page of limit 2 held \(page.entries.count)")
                listed += page.entries.map(\.key)
                guard let next = page.next else { break }
                token = next
            }
            try expect(listed == names.sorted().map(key), "listed \(listed), expected \(names.sorted().map(key))")
            let sizes = try await backend.list(prefix: key("l/"), pageToken: "", limit: 1000).entries.map(\.info.size)
            try expect(sizes == names.map { _ in 3 }, "listed sizes \(sizes)")
        }
        await run.check("delete removes; a missing key is not_found for head, get and delete") {
            _ = try await put("d", small)
            try await backend.remove(key: key("d"))
            try await expectCode("not_found", "head after delete") { _ = try await backend.head(key: key("d")) }
            try await expectCode("not_found", "get of a deleted key") { _ = try await get("d") }
            try await expectCode("not_found", "delete of a deleted key") { try await backend.remove(key: key("d")) }
        }
        await run.check("a reader closed half-read leaves the object usable") {
            let bytes = (0..<(256 << 10)).map { UInt8(truncatingIfNeeded: $0) }
            _ = try await put("half.bin", bytes)
            let (_, reader) = try await backend.getOpen(key: key("half.bin"), offset: 0, length: UInt64.max)
            _ = try await backend.getRead(reader, maxBytes: 1024)
            backend.getClose(reader)
            try await backend.remove(key: key("half.bin"))
            try await expectCode("not_found", "head after deleting a half-read object") { _ = try await backend.head(key: key("half.bin")) }
        }
        await run.check("16 concurrent uploads and reads of distinct keys") {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<16 {
                    group.addTask {
                        let bytes = Array("object \(index) ".utf8) + (0..<(index * 1000)).map { UInt8(truncatingIfNeeded: $0) }
                        _ = try await put("c/\(index)", bytes, chunk: 4096)
                        let read = try await get("c/\(index)").1
                        try expect(read == bytes, "object \(index) read back differs")
                    }
                }
                try await group.waitForAll()
            }
        }
        await cleanUp()
        return run.checks
    }

    private func key(_ name: String) -> String { prefix + name }

    @discardableResult
    private func put(_ name: String, _ bytes: [UInt8], contentType: String = "application/octet-stream",
                     chunk: Int = 1 << 20) async throws -> ObjectInfo {
        let upload = try await backend.putOpen(key: key(name), info: ObjectInfo(size: UInt64(bytes.count), contentType: contentType))
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + chunk, bytes.count)
            try await backend.putWrite(upload, Array(bytes[offset..<end]))
            offset = end
        }
        return try await backend.putFinish(upload, sent: ObjectInfo(size: UInt64(bytes.count), contentType: contentType,
                                                                    sha256: Self.sha256(bytes)))
    }

    private func get(_ name: String, offset: UInt64 = 0, length: UInt64 = UInt64.max) async throws -> (ObjectInfo, [UInt8]) {
        let (info, reader) = try await backend.getOpen(key: key(name), offset: offset, length: length)
        defer { backend.getClose(reader) }
        var bytes: [UInt8] = []
        while true {
            let chunk = try await backend.getRead(reader, maxBytes: 256 << 10)
            if chunk.readableBytes == 0 { break }
            bytes += chunk.readableBytesView
            guard bytes.count <= 64 << 20 else { throw ContractBroken("get_read never reports the end (over 64 MiB read)") }
        }
        return (info, bytes)
    }

    private func expectCode(_ code: String, _ what: String, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as KernelError where error.code == code {
            return
        } catch let error as KernelError {
            throw ContractBroken("\(what): expected \(code), got \(error.code) (\(error.logDetail ?? error.message))")
        }
        throw ContractBroken("\(what): expected \(code), it succeeded")
    }

    private func cleanUp() async {
        var token = ""
        for _ in 0..<100 {
            guard let page = try? await backend.list(prefix: prefix, pageToken: token, limit: 1000) else { return }
            for entry in page.entries { try? await backend.remove(key: entry.key) }
            guard let next = page.next else { return }
            token = next
        }
    }

    static func sha256(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).hex }
}
