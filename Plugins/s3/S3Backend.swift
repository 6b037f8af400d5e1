import Foundation
import NorthstarCloud
import NorthstarPluginKit
import PluginAPI

/// The `s3` storage backend: the S3 REST API with Signature V4, through the
/// host's HTTP client. Small objects go up in one PUT; larger ones as a
/// multipart upload, part by part as the host streams them (so at most one
/// part is in memory). The kernel's SHA-256 is stored as `x-amz-meta-sha256`.
final class S3Backend: StorageProvider, @unchecked Sendable {
    static let name = "s3"
    static let version = "1.0.0"
    static let summary = "Amazon S3 and S3-compatible servers (Signature V4, path or virtual-hosted addressing)"

    let settings: S3Settings
    let signer: SigV4Signer
    let host: HostLink

    init(config: [UInt8], host: HostLink) throws {
        settings = try S3Settings(config)
        signer = SigV4Signer(accessKeyID: settings.accessKeyID, secretAccessKey: settings.secretAccessKey, region: settings.region)
        self.host = host
        guard host.canFetch else { throw CloudFailure.config("this host has no http_fetch (ABI 1.1 needed)") }
        sweeper = Task { [weak self, settings] in
            // Once soon after start (what a crash left), then regularly (what an outage left).
            let every = Duration.seconds(min(max(settings.abandonedUploadSeconds / 4, 1), 900))
            try? await Task.sleep(for: .seconds(1))
            while !Task.isCancelled, let backend = self {
                await backend.abortAbandonedUploads()
                try? await Task.sleep(for: every)
            }
        }
    }

    deinit { sweeper?.cancel() }

    private var sweeper: Task<Void, Never>?

    /// The multipart uploads this process has open: never swept, whatever
    /// date the server gives them (a server with a wrong clock, or one that
    /// reports a fixed date, would otherwise have live uploads aborted).
    private var uploading: Set<String> = []
    private let uploadingLock = NSLock()

    private func isUploading(_ id: String) -> Bool { uploadingLock.withLock { uploading.contains(id) } }
    private func began(_ id: String) { _ = uploadingLock.withLock { uploading.insert(id) } }
    private func ended(_ id: String) { _ = uploadingLock.withLock { uploading.remove(id) } }

    /// Aborts every multipart upload of the bucket begun more than
    /// `abandoned_upload_seconds` ago. Failures are logged and retried next time.
    func abortAbandonedUploads() async {
        let cutoff = Date().addingTimeInterval(-Double(settings.abandonedUploadSeconds))
        var markers: [(String, String)] = []
        do {
            while true {
                let answer = try await send("GET", key: nil, query: [("uploads", "")] + markers, what: "list multipart uploads",
                                            maxResponse: 16 << 20, aboutObject: false)
                let xml = String(decoding: answer.body, as: UTF8.self)
                for entry in XMLText.elements("Upload", in: xml) {
                    guard let key = XMLText.value("Key", in: entry), let id = XMLText.value("UploadId", in: entry),
                          let initiated = XMLText.value("Initiated", in: entry),
                          Double(HTTPDate.iso8601(initiated)) / 1000 < cutoff.timeIntervalSince1970,
                          !isUploading(id) else { continue }
                    _ = try await send("DELETE", key: key, query: [("uploadId", id)], expect: [200, 204, 404], what: "abort abandoned upload")
                    host.log(ns_log_level(NS_LOG_WARNING), "aborted a multipart upload left behind since \(initiated)")
                }
                guard XMLText.value("IsTruncated", in: xml) == "true", let key = XMLText.value("NextKeyMarker", in: xml),
                      let id = XMLText.value("NextUploadIdMarker", in: xml) else { break }
                markers = [("key-marker", key), ("upload-id-marker", id)]
            }
        } catch {
            host.log(ns_log_level(NS_LOG_WARNING), "could not sweep abandoned multipart uploads: \(error)")
        }
    }

    /// One signed request; an answer outside `expect` becomes a failure.
    func send(_ method: String, key: String?, query: [(String, String)] = [], headers: [(String, String)] = [],
              body: [UInt8] = [], expect: Set<Int> = [200], what: String, maxResponse: Int = 1 << 20, aboutObject: Bool = true) async throws -> FetchedResponse {
        let (base, hostHeader, path) = settings.location(key)
        let signed = signer.sign(method: method, path: path, query: query, headers: headers + [("host", hostHeader)],
                                 payloadHash: SigV4Signer.sha256Hex(body), date: Date())
        let queryString = SigV4Signer.canonicalQuery(query)
        let url = base + path + (queryString.isEmpty ? "" : "?" + queryString)
        let response = try await host.fetch(FetchRequest(method: method, url: url, headers: headers + signed, body: body,
                                                         timeoutMilliseconds: settings.timeoutMilliseconds,
                                                         maxResponseBytes: UInt64(maxResponse)))
        guard expect.contains(response.status) else {
            let text = String(decoding: response.body, as: UTF8.self)
            let detail = XMLText.value("Code", in: text).map { "\($0): \(XMLText.value("Message", in: text) ?? "")" } ?? text
            throw CloudFailure.from(httpStatus: response.status, service: "S3", what: what, detail: detail, aboutObject: aboutObject)
        }
        return response
    }

    // MARK: Uploads

    final class Upload: BufferedUpload, @unchecked Sendable {
        var uploadID: String?
        var parts: [(number: Int, etag: String)] = []
    }

    func putOpen(key: String, contentType: String, size: UInt64?) async throws -> StorageUpload {
        Upload(key: key, contentType: contentType)
    }

    func putWrite(_ handle: StorageUpload, _ chunk: [UInt8]) async throws {
        let upload = handle as! Upload
        upload.append(chunk)
        while let part = upload.nextPart(size: settings.partSize) { try await uploadPart(upload, part) }
    }

    private func uploadPart(_ upload: Upload, _ bytes: [UInt8]) async throws {
        if upload.uploadID == nil {
            let created = try await send("POST", key: upload.key, query: [("uploads", "")],
                                         headers: [("content-type", upload.contentType)], what: "create multipart upload", aboutObject: false)
            guard let id = XMLText.value("UploadId", in: String(decoding: created.body, as: UTF8.self)) else {
                throw PluginFailure(status: Int32(NS_ERR_IO), message: "S3 gave no UploadId")
            }
            upload.uploadID = id
            began(id)
        }
        let number = upload.parts.count + 1
        let answer = try await send("PUT", key: upload.key, query: [("partNumber", String(number)), ("uploadId", upload.uploadID!)],
                                    body: bytes, what: "upload part \(number)", aboutObject: false)
        upload.parts.append((number, answer.header("etag") ?? ""))
    }

    func putFinish(_ handle: StorageUpload) async throws -> StoredObject {
        let upload = handle as! Upload
        let metadata = [("content-type", upload.contentType), ("x-amz-meta-sha256", upload.sha256Hex)]
        let rest = upload.takeRest()
        guard let uploadID = upload.uploadID else {
            _ = try await send("PUT", key: upload.key, headers: metadata, body: rest, what: "put object", aboutObject: false)
            return try await head(key: upload.key)
        }
        do {
            if !rest.isEmpty || upload.parts.isEmpty { try await uploadPart(upload, rest) }
            let parts = upload.parts.map { "<Part><PartNumber>\($0.number)</PartNumber><ETag>\(XMLText.escape($0.etag))</ETag></Part>" }
            _ = try await send("POST", key: upload.key, query: [("uploadId", uploadID)],
                               body: Array("<CompleteMultipartUpload>\(parts.joined())</CompleteMultipartUpload>".utf8),
                               what: "complete multipart upload", aboutObject: false)
        } catch {
            // Its parts would otherwise stay stored (and billed) until a sweep.
            putAbort(upload)
            throw error
        }
        upload.uploadID = nil
        ended(uploadID)
        do {
            // A multipart upload's metadata is fixed before its bytes are
            // known: copy the object onto itself to record the SHA-256.
            let source = "/\(settings.bucket)/\(SigV4Signer.uriEncode(upload.key, keepSlash: true))"
            _ = try await send("PUT", key: upload.key, headers: metadata + [("x-amz-copy-source", source),
                                                                           ("x-amz-metadata-directive", "REPLACE")],
                               what: "record metadata", aboutObject: false)
            return try await head(key: upload.key)
        } catch {
            // The upload failed as far as the host knows: nothing may stay visible.
            _ = try? await send("DELETE", key: upload.key, expect: [200, 204], what: "remove a half-recorded object")
            throw error
        }
    }

    func putAbort(_ handle: StorageUpload) {
        let upload = handle as! Upload
        guard let uploadID = upload.uploadID else { return }
        upload.uploadID = nil
        ended(uploadID)
        Task { _ = try? await send("DELETE", key: upload.key, query: [("uploadId", uploadID)], expect: [200, 204, 404], what: "abort") }
    }

    // MARK: Reads

    func getOpen(key: String, offset: UInt64, length: UInt64) async throws -> (StoredObject, StorageReader) {
        let object = try await head(key: key)
        return (object, try RangedReader(key: key, object: object, offset: offset, length: length))
    }

    func getRead(_ handle: StorageReader, maxBytes: Int) async throws -> [UInt8] {
        let reader = handle as! RangedReader
        return try await reader.read(maxBytes: maxBytes, readAhead: settings.readAhead) { first, last in
            // If-Match: a ranged read never mixes two versions of the object.
            try await send("GET", key: reader.key, headers: [("range", "bytes=\(first)-\(last)"), ("if-match", reader.version)],
                           expect: [200, 206], what: "read", maxResponse: settings.readAhead + 1024).body
        }
    }

    func getClose(_ reader: StorageReader) {}

    // MARK: Metadata

    func head(key: String) async throws -> StoredObject {
        let answer = try await send("HEAD", key: key, what: "head")
        return StoredObject(size: UInt64(answer.header("content-length") ?? "") ?? 0,
                            modifiedUnixMs: HTTPDate.imfFixdate(answer.header("last-modified") ?? ""),
                            contentType: answer.header("content-type") ?? "", etag: Self.unquoted(answer.header("etag") ?? ""),
                            sha256: answer.header("x-amz-meta-sha256") ?? "")
    }

    /// An entity tag without its quotes: the host quotes tags itself, the same way for every backend.
    static func unquoted(_ etag: String) -> String {
        etag.count >= 2 && etag.hasPrefix("\"") && etag.hasSuffix("\"") ? String(etag.dropFirst().dropLast()) : etag
    }

    func list(prefix: String, pageToken: String, limit: Int) async throws -> (objects: [(key: String, object: StoredObject)], next: String?) {
        var query = [("list-type", "2"), ("prefix", prefix), ("max-keys", String(limit))]
        if !pageToken.isEmpty { query.append(("start-after", pageToken)) }
        let answer = try await send("GET", key: nil, query: query, what: "list", maxResponse: 16 << 20, aboutObject: false)
        let xml = String(decoding: answer.body, as: UTF8.self)
        let keys = XMLText.elements("Contents", in: xml).compactMap { XMLText.value("Key", in: $0) }
        // A listing carries no user metadata (the SHA-256, the content type):
        // each object is described by its HEAD, so a list and a HEAD agree.
        let objects = try await describe(keys)
        let truncated = XMLText.value("IsTruncated", in: xml) == "true"
        return (objects, truncated ? keys.last : nil)
    }

    /// HEADs `keys`, eight at a time, in order; a key deleted meanwhile is left out.
    private func describe(_ keys: [String]) async throws -> [(key: String, object: StoredObject)] {
        var described: [Int: StoredObject] = [:]
        for start in stride(from: 0, to: keys.count, by: 8) {
            try await withThrowingTaskGroup(of: (Int, StoredObject?).self) { group in
                for index in start..<min(start + 8, keys.count) {
                    group.addTask {
                        do {
                            return (index, try await self.head(key: keys[index]))
                        } catch let failure as PluginFailure where failure.status == Int32(NS_ERR_NOT_FOUND) {
                            return (index, nil)
                        }
                    }
                }
                for try await (index, object) in group { described[index] = object }
            }
        }
        return keys.indices.compactMap { index in described[index].map { (keys[index], $0) } }
    }

    func remove(key: String) async throws {
        _ = try await head(key: key)  // S3 deletes a missing key without a word; the host wants 404
        _ = try await send("DELETE", key: key, expect: [200, 204], what: "delete")
    }
}
