import Foundation
import NorthstarCloud
import NorthstarPluginKit
import PluginAPI

/// The `gcs` storage backend: the Google Cloud Storage JSON API through the
/// host's HTTP client. Objects up to one chunk go up in one multipart upload
/// with their metadata; larger ones as a resumable upload, chunk by chunk as
/// the host streams them, with the SHA-256 recorded once the bytes are in.
final class GCSBackend: StorageProvider, @unchecked Sendable {
    static let name = "gcs"
    static let version = "1.0.0"
    static let summary = "Google Cloud Storage JSON API (service-account key, or an emulator via STORAGE_EMULATOR_HOST)"
    static let scope = "https://www.googleapis.com/auth/devstorage.read_write"

    let settings: GCSSettings
    let host: HostLink
    private let tokenLock = NSLock()
    private var token: (value: String, expires: Date)?

    init(config: [UInt8], host: HostLink) throws {
        settings = try GCSSettings(config)
        self.host = host
        guard host.canFetch else { throw CloudFailure.config("this host has no http_fetch (ABI 1.1 needed)") }
    }

    // MARK: Requests

    /// An access token, fetched again a minute before it expires.
    private func bearer() async throws -> [(String, String)] {
        guard let account = settings.serviceAccount else { return [] }
        if let cached = tokenLock.withLock({ token }), cached.expires > Date().addingTimeInterval(60) {
            return [("authorization", "Bearer \(cached.value)")]
        }
        let assertion = try account.assertion(now: Date(), scope: Self.scope)
        let form = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=\(assertion)"
        let answer = try await host.fetch(FetchRequest(method: "POST", url: account.tokenURI,
                                                       headers: [("content-type", "application/x-www-form-urlencoded")],
                                                       body: Array(form.utf8), timeoutMilliseconds: settings.timeoutMilliseconds))
        guard answer.status == 200, let object = (try? JSONSerialization.jsonObject(with: Data(answer.body))) as? [String: Any],
              let value = object["access_token"] as? String else {
            throw CloudFailure.from(httpStatus: answer.status == 200 ? 502 : answer.status, service: "the token endpoint",
                                    what: "a token exchange", detail: String(decoding: answer.body.prefix(300), as: UTF8.self))
        }
        let lifetime = (object["expires_in"] as? NSNumber)?.doubleValue ?? 3600
        tokenLock.withLock { token = (value, Date().addingTimeInterval(lifetime)) }
        return [("authorization", "Bearer \(value)")]
    }

    func send(_ method: String, _ url: String, headers: [(String, String)] = [], body: [UInt8] = [], expect: Set<Int> = [200],
              what: String, maxResponse: Int = 1 << 20, aboutObject: Bool = true) async throws -> FetchedResponse {
        let answer = try await host.fetch(FetchRequest(method: method, url: url, headers: headers + (try await bearer()), body: body,
                                                       timeoutMilliseconds: settings.timeoutMilliseconds,
                                                       maxResponseBytes: UInt64(maxResponse)))
        guard expect.contains(answer.status) else {
            throw CloudFailure.from(httpStatus: answer.status, service: "GCS", what: what,
                                    detail: String(decoding: answer.body.prefix(300), as: UTF8.self), aboutObject: aboutObject)
        }
        return answer
    }

    private func objectURL(_ key: String, _ query: String = "") -> String {
        "\(settings.endpoint)/storage/v1/b/\(settings.bucket)/o/\(SigV4Signer.uriEncode(key))" + (query.isEmpty ? "" : "?" + query)
    }

    private var uploadBase: String { "\(settings.endpoint)/upload/storage/v1/b/\(settings.bucket)/o" }

    private func object(_ body: [UInt8]) throws -> StoredObject {
        guard let json = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            throw PluginFailure(status: Int32(NS_ERR_IO), message: "GCS answered with something other than an object resource")
        }
        return Self.stored(json)
    }

    static func stored(_ json: [String: Any]) -> StoredObject {
        let size = (json["size"] as? String).flatMap(UInt64.init) ?? (json["size"] as? NSNumber)?.uint64Value ?? 0
        let metadata = json["metadata"] as? [String: Any] ?? [:]
        return StoredObject(size: size, modifiedUnixMs: HTTPDate.iso8601(json["updated"] as? String ?? ""),
                            contentType: json["contentType"] as? String ?? "",
                            etag: (json["generation"] as? String) ?? (json["generation"] as? NSNumber)?.stringValue ?? "",
                            sha256: metadata["sha256"] as? String ?? "")
    }

    // MARK: Uploads

    final class Upload: BufferedUpload, @unchecked Sendable {
        /// Bytes GCS has acknowledged in this resumable session.
        var sent: UInt64 = 0
        var session: String?
    }

    func putOpen(key: String, contentType: String, size: UInt64?) async throws -> StorageUpload {
        Upload(key: key, contentType: contentType)
    }

    func putWrite(_ handle: StorageUpload, _ chunk: [UInt8]) async throws {
        let upload = handle as! Upload
        upload.append(chunk)
        // Keep some back: the last chunk must carry the total, so the final
        // bytes always wait for `putFinish`.
        while let part = upload.nextPart(size: settings.chunkSize, keepingSome: true) {
            _ = try await sendChunk(upload, part, total: nil)
        }
    }

    private func sendChunk(_ upload: Upload, _ bytes: [UInt8], total: UInt64?) async throws -> FetchedResponse {
        if upload.session == nil {
            let metadata = try JSONSerialization.data(withJSONObject: ["name": upload.key, "contentType": upload.contentType])
            let created = try await send("POST", "\(uploadBase)?uploadType=resumable&name=\(SigV4Signer.uriEncode(upload.key))",
                                         headers: [("content-type", "application/json; charset=UTF-8"),
                                                   ("x-upload-content-type", upload.contentType)],
                                         body: [UInt8](metadata), what: "start a resumable upload", aboutObject: false)
            guard let location = created.header("location") else {
                throw PluginFailure(status: Int32(NS_ERR_IO), message: "GCS gave no upload session")
            }
            upload.session = location
        }
        let last = upload.sent + UInt64(bytes.count)
        let range = bytes.isEmpty ? "bytes */\(total ?? 0)" : "bytes \(upload.sent)-\(last - 1)/\(total.map(String.init) ?? "*")"
        let answer = try await send("PUT", upload.session!, headers: [("content-range", range)], body: bytes,
                                    expect: total == nil ? [308] : [200, 201], what: "upload a chunk", aboutObject: false)
        upload.sent = last
        return answer
    }

    func putFinish(_ handle: StorageUpload) async throws -> StoredObject {
        let upload = handle as! Upload
        let sha = upload.sha256Hex
        let rest = upload.takeRest()
        if upload.session == nil {
            // One request: metadata and bytes as multipart/related.
            let boundary = "northstar-" + UUID().uuidString
            let metadata = try JSONSerialization.data(withJSONObject: [
                "name": upload.key, "contentType": upload.contentType, "metadata": ["sha256": sha],
            ])
            var body = Array("--\(boundary)\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n".utf8) + [UInt8](metadata)
            body += Array("\r\n--\(boundary)\r\ncontent-type: \(upload.contentType)\r\n\r\n".utf8) + rest
            body += Array("\r\n--\(boundary)--\r\n".utf8)
            let answer = try await send("POST", "\(uploadBase)?uploadType=multipart",
                                        headers: [("content-type", "multipart/related; boundary=\(boundary)")], body: body,
                                        what: "upload", aboutObject: false)
            return try object(answer.body)
        }
        do {
            _ = try await sendChunk(upload, rest, total: upload.sent + UInt64(rest.count))
        } catch {
            putAbort(upload)  // the session's bytes would otherwise wait a week to expire
            throw error
        }
        upload.session = nil
        do {
            let patched = try await send("PATCH", objectURL(upload.key), headers: [("content-type", "application/json")],
                                         body: [UInt8](try JSONSerialization.data(withJSONObject: ["metadata": ["sha256": sha]])),
                                         what: "record metadata", aboutObject: false)
            return try object(patched.body)
        } catch {
            // The upload failed as far as the host knows: nothing may stay visible.
            _ = try? await send("DELETE", objectURL(upload.key), expect: [200, 204], what: "remove a half-recorded object")
            throw error
        }
    }

    func putAbort(_ handle: StorageUpload) {
        let upload = handle as! Upload
        guard let session = upload.session else { return }
        upload.session = nil
        // Cancelling a resumable upload: DELETE on its session (499 is GCS's answer).
        Task { _ = try? await send("DELETE", session, expect: [204, 499, 404, 410], what: "cancel an upload") }
    }

    // MARK: Reads

    func getOpen(key: String, offset: UInt64, length: UInt64) async throws -> (StoredObject, StorageReader) {
        let object = try await head(key: key)
        return (object, try RangedReader(key: key, object: object, offset: offset, length: length))
    }

    func getRead(_ handle: StorageReader, maxBytes: Int) async throws -> [UInt8] {
        let reader = handle as! RangedReader
        return try await reader.read(maxBytes: maxBytes, readAhead: settings.readAhead) { first, last in
            // ifGenerationMatch: ranged reads never mix two versions of the object.
            let query = "alt=media" + (reader.version.isEmpty ? "" : "&ifGenerationMatch=\(reader.version)")
            return try await send("GET", objectURL(reader.key, query), headers: [("range", "bytes=\(first)-\(last)")],
                                  expect: [200, 206], what: "read", maxResponse: settings.readAhead + 1024).body
        }
    }

    func getClose(_ reader: StorageReader) {}

    // MARK: Metadata

    func head(key: String) async throws -> StoredObject {
        try object(try await send("GET", objectURL(key), what: "metadata").body)
    }

    /// Pages by key: the token is the last key of the previous page, sent as
    /// `startOffset` (and filtered here too, so a server that ignores it, as
    /// some emulators do, still pages correctly).
    func list(prefix: String, pageToken: String, limit: Int) async throws -> (objects: [(key: String, object: StoredObject)], next: String?) {
        var query = "prefix=\(SigV4Signer.uriEncode(prefix))&maxResults=\(limit + 1)"
        if !pageToken.isEmpty { query += "&startOffset=\(SigV4Signer.uriEncode(pageToken))" }
        let answer = try await send("GET", "\(settings.endpoint)/storage/v1/b/\(settings.bucket)/o?\(query)", what: "list",
                                    maxResponse: 16 << 20, aboutObject: false)
        let json = (try? JSONSerialization.jsonObject(with: Data(answer.body))) as? [String: Any] ?? [:]
        let items = (json["items"] as? [[String: Any]] ?? []).compactMap { item -> (key: String, object: StoredObject)? in
            guard let name = item["name"] as? String, name.hasPrefix(prefix), name > pageToken else { return nil }
            return (name, Self.stored(item))
        }.sorted { $0.key < $1.key }
        let page = Array(items.prefix(limit))
        return (page, items.count > limit ? page.last?.key : nil)
    }

    func remove(key: String) async throws {
        _ = try await send("DELETE", objectURL(key), expect: [200, 204], what: "delete")
    }
}
