import Foundation
import HTTPTypes
import Hummingbird

/// `/v1/artifacts` (raw uploads, each under a new asset id) and `/v1/media`
/// (objects at a client-chosen path): upload streamed, download with
/// `Range`, `ETag` and `If-None-Match`, head, delete, list by prefix.
/// Every key is built from the caller's tenant and env, so another
/// tenant's object is simply not there: 404, as for a missing one.
struct ArtifactRoutes {
    let api: APIRoutes
    let artifacts: Artifacts

    func register(on router: Router<NorthstarRequestContext>) {
        let routes = self
        router.post("/v1/artifacts") { request, _ in
            let keys = try await routes.keys(request, .write)
            let filename = try ObjectName.segment(request.uri.queryParameters["filename"].map(String.init) ?? "", field: "filename")
            let assetID = Identifier.make(prefix: "as_")
            let key = keys.raw(assetID: assetID, filename: filename)
            let info = try await routes.upload(request, key: key)
            return jsonResponse(.created, routes.json(info, ["asset_id": .string(assetID), "filename": .string(filename),
                                                            "key": .string(key.raw)]))
        }
        router.get("/v1/artifacts") { request, _ in
            let keys = try await routes.keys(request, .read)
            let prefix = try request.uri.queryParameters["prefix"].map { try ObjectName.segment(String($0), field: "prefix") } ?? ""
            return try await routes.list(request, keys: keys, area: .raw, prefix: prefix, nameKey: "name")
        }
        for method in [HTTPRequest.Method.get, .head, .delete] {
            router.on("/v1/artifacts/:asset_id/:filename", method: method) { request, routeContext in
                let keys = try await routes.keys(request, method == .delete ? .write : .read)
                let assetID = try routes.assetID(routeContext)
                let filename = try ObjectName.segment(try routes.decoded(routeContext.parameters.require("filename")), field: "filename")
                return try await routes.serve(request, key: keys.raw(assetID: assetID, filename: filename))
            }
        }
        // By asset id alone: the asset's one object, whatever its filename.
        for method in [HTTPRequest.Method.get, .head, .delete] {
            router.on("/v1/artifacts/:asset_id", method: method) { request, routeContext in
                let keys = try await routes.keys(request, method == .delete ? .write : .read)
                let assetID = try routes.assetID(routeContext)
                let prefix = keys.raw(assetID: assetID, filename: "")
                guard let key = try await routes.artifacts.list(prefix: prefix, pageToken: "", limit: 1).entries.first?.key else {
                    throw KernelError.notFound("artifact")
                }
                return try await routes.serve(request, key: try keys.listed(key))
            }
        }
        router.get("/v1/media") { request, _ in
            let keys = try await routes.keys(request, .read)
            let prefix = request.uri.queryParameters["prefix"].map(String.init) ?? ""
            if !prefix.isEmpty { _ = try ObjectName.path(prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix, field: "prefix") }
            return try await routes.list(request, keys: keys, area: .media, prefix: prefix, nameKey: "path")
        }
        for method in [HTTPRequest.Method.put, .get, .head, .delete] {
            router.on("/v1/media/**", method: method) { request, _ in
                let keys = try await routes.keys(request, [.get, .head].contains(method) ? .read : .write)
                let path = try routes.mediaPath(request.uri.path)
                let key = keys.media(path)
                guard method == .put else { return try await routes.serve(request, key: key) }
                let info = try await routes.upload(request, key: key)
                return jsonResponse(.created, routes.json(info, ["path": .string(path), "key": .string(key.raw)]))
            }
        }
    }

    /// The `asset_id` of the path, checked for shape.
    func assetID(_ routeContext: NorthstarRequestContext) throws -> String {
        let assetID = try routeContext.parameters.require("asset_id")
        guard Identifier.isWellFormed(assetID, prefix: "as_") else {
            throw KernelError.invalid("invalid_id", "\"\(assetID.prefix(80))\" is not an asset id (as_ and 26 base32 characters)")
        }
        return assetID
    }

    /// The caller's key space, from the isolation service (which checks the artifacts scope).
    func keys(_ request: Request, _ access: RequestContext.Access) async throws -> ObjectKey {
        try api.kernel.resolver.objectKeys(for: try await api.identify(request), access: access)
    }

    /// The media path of a request path: each segment percent-decoded and checked on its own.
    func mediaPath(_ requestPath: String) throws -> String {
        let raw = requestPath.dropFirst("/v1/media/".count)
        let segments = try raw.split(separator: "/", omittingEmptySubsequences: false).map { segment in
            try ObjectName.segment(try decoded(String(segment)), field: "path")
        }
        return try ObjectName.path(segments.joined(separator: "/"), field: "path")
    }

    func decoded(_ text: String) throws -> String {
        guard let decoded = text.removingPercentEncoding else {
            throw KernelError.invalid("invalid_path", "the path has a malformed percent-encoding")
        }
        return decoded
    }

    func upload(_ request: Request, key: StorageKey) async throws -> ObjectInfo {
        let contentType = try ObjectName.contentType(request.headers[.contentType])
        let declared = request.headers[.contentLength].flatMap { UInt64($0) }
        return try await artifacts.put(key: key, contentType: contentType, declaredLength: declared, body: request.body)
    }

    /// GET, HEAD or DELETE of one object.
    ///
    /// A whole download opens the object at once (one call: its info and a
    /// reader); only a ranged one asks for the size first, since a suffix
    /// range needs it, and then checks the object did not change between.
    func serve(_ request: Request, key: StorageKey) async throws -> Response {
        if request.method == .delete {
            try await artifacts.remove(key: key)
            return Response(status: .noContent)
        }
        let rangeHeader = request.headers[.range]
        var reader: StorageBackend.Reader?
        let info: ObjectInfo
        if request.method == .get && rangeHeader == nil {
            (info, reader) = try await artifacts.open(key: key, range: nil)
        } else {
            info = try await artifacts.head(key: key)
        }
        let storage = try artifacts.storage()
        var headers: HTTPFields = [.eTag: info.entityTag, .acceptRanges: "bytes", .contentType: info.contentType]
        if !info.sha256.isEmpty { headers[HTTPField.Name("x-checksum-sha256")!] = info.sha256 }
        // A malformed Range is refused whatever follows (no reader is open
        // when there is one); whether it fits the object is weighed after
        // the preconditions (RFC 9110, 13.2.2).
        let asked = try ByteRange.Request(rangeHeader, size: info.size)
        if let tags = request.headers[.ifNoneMatch],
           tags.split(separator: ",").contains(where: { let tag = $0.trimmingHeaderWhitespace; return tag == "*" || tag == info.entityTag || tag == "W/" + info.entityTag }) {
            if let reader { storage.getClose(reader) }
            return Response(status: .notModified, headers: headers)
        }
        let range = try asked?.resolve(size: info.size)
        headers[.contentLength] = String(range?.length ?? info.size)
        if let range { headers[.contentRange] = "bytes \(range.offset)-\(range.last)/\(info.size)" }
        let status: HTTPResponse.Status = range == nil ? .ok : .partialContent
        if request.method == .head { return Response(status: status, headers: headers) }
        if reader == nil {
            let (opened, rangeReader) = try await artifacts.open(key: key, range: range)
            guard opened.size == info.size, opened.sha256 == info.sha256 else {
                storage.getClose(rangeReader)
                throw KernelError(.unavailable, code: "object_changed", message: "the object changed while it was being read; retry")
            }
            reader = rangeReader
        }
        let (artifacts, opened) = (self.artifacts, reader!)
        return Response(status: status, headers: headers, body: ResponseBody { writer in
            try await artifacts.stream(opened, expectedSHA256: range == nil ? info.sha256 : nil) { try await writer.write($0) }
            try await writer.finish(nil)
        })
    }

    func list(_ request: Request, keys: ObjectKey, area: ObjectKey.Area, prefix: String, nameKey: String) async throws -> Response {
        let base = keys.prefix(of: area)
        let limit = try api.unsigned(request, "limit", default: 100, max: 1000)
        guard limit > 0 else { throw KernelError.invalid("invalid_limit", "limit must be from 1 to 1000") }
        let token = request.uri.queryParameters["page_token"].map(String.init) ?? ""
        guard token.isEmpty || token.hasPrefix(base) else {
            throw KernelError.invalid("invalid_page_token", "page_token must come from a previous page of this list")
        }
        let page = try await artifacts.list(prefix: keys.listing(area, prefix), pageToken: token, limit: UInt32(limit))
        let objects = page.entries.filter { $0.key.hasPrefix(base) }.map { entry -> JSONValue in
            json(entry.info, [nameKey: .string(String(entry.key.dropFirst(base.count))), "key": .string(entry.key)])
        }
        return jsonResponse(.ok, .object(["objects": .array(objects), "next_page_token": page.next.map(JSONValue.string) ?? .null]))
    }

    func json(_ info: ObjectInfo, _ extra: [String: JSONValue]) -> JSONValue {
        var members: [String: JSONValue] = [
            "size": .number(Double(info.size)), "sha256": .string(info.sha256), "content_type": .string(info.contentType),
            "etag": .string(info.entityTag),
        ]
        if info.modifiedUnixMs > 0 {
            members["modified_at"] = .string(EventDraft.format(Date(timeIntervalSince1970: Double(info.modifiedUnixMs) / 1000)))
        }
        members.merge(extra) { _, new in new }
        return .object(members)
    }
}
