import Hummingbird

/// Lets pages of the configured origins (`node.allowed_origins`) call the
/// REST API and load the browser client: their requests get CORS headers and
/// their preflights are answered here, before routing (no route takes
/// OPTIONS). A page of any other origin gets no CORS headers, so its browser
/// keeps the answer from it, and its preflight is refused with 403
/// `origin_not_allowed`, as the transports refuse it.
///
/// Credentials are bearer tokens, never cookies, so no page can borrow a
/// user's identity: the allow list decides which apps may read answers.
/// The transports' own routes (`/sse`, `/ws`) keep their plugins' checks.
struct CORSMiddleware: RouterMiddleware {
    typealias Context = NorthstarRequestContext
    let allowedOrigins: Set<String>

    static let allowedMethods = "GET, HEAD, POST, PUT, DELETE"
    static let allowedHeaders = "authorization, content-type, if-none-match, range, traceparent, x-request-id"
    static let exposedHeaders = "etag, content-range, content-length, x-request-id, www-authenticate, allow"

    /// `scheme://host[:port]`, nothing more: what a browser sends as `Origin`.
    static func isOrigin(_ text: String) -> Bool {
        let scheme = text.hasPrefix("https://") ? "https://" : text.hasPrefix("http://") ? "http://" : nil
        guard let scheme else { return false }
        let authority = text.dropFirst(scheme.count)
        return !authority.isEmpty && authority.utf8.count <= 253 &&
            authority.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-.:[]".contains($0)) }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard let origin = request.headers[.origin], path.hasPrefix("/v1/") || path == "/v1" || path.hasPrefix("/client/") else {
            return try await next(request, context)
        }
        let allowed = allowedOrigins.contains(origin)
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            guard allowed else {
                throw KernelError(.forbidden, code: "origin_not_allowed",
                                  message: "pages of \(origin.prefix(80)) may not call this API (node.allowed_origins)")
            }
            var headers = HTTPFields()
            headers[.accessControlAllowOrigin] = origin
            headers[.accessControlAllowMethods] = Self.allowedMethods
            headers[.accessControlAllowHeaders] = Self.allowedHeaders
            headers[.accessControlMaxAge] = "600"
            headers[.vary] = "Origin"
            return Response(status: .noContent, headers: headers)
        }
        guard allowed else { return try await next(request, context) }
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPResponseError {
            // Errors too must be readable by the page: it needs their codes.
            response = try error.response(from: request, context: context)
        }
        response.headers[.accessControlAllowOrigin] = origin
        response.headers[.accessControlExposeHeaders] = Self.exposedHeaders
        response.headers[.vary] = "Origin"
        return response
    }
}
