import Hummingbird
import Instrumentation
import Logging
import Tracing

/// Every error leaves as `{"error": {"code", "message"}}`, every answer
/// carries the request's id (`x-request-id`: the client's, or the one made
/// here) so a client can quote it, and every request is logged by method,
/// path, route template and status, with its request id, trace id and (once
/// known) tenant: never its query string or headers, where credentials
/// travel.
struct ErrorMiddleware<Context: Hummingbird.RequestContext>: RouterMiddleware {
    let logger = Logger(label: "northstar.http")
    let metrics: Metrics
    /// The methods each path takes, to tell 405 from 404.
    let allowed: AllowedMethods
    /// What the console lists as recent errors.
    var recentErrors: RecentErrors?
    /// Set when `metrics.per_tenant` is on: requests are also counted by tenant.
    var tenantLabels: TenantLabels?

    /// Set when `tracing` is configured: each request gets a server span.
    var tracer: NodeTracer?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let tracer else {
            // Not tracing: the caller's trace context passes through unchanged.
            let facts = RequestFacts(headers: request.headers)
            return try await RequestFacts.$current.withValue(facts) {
                try await handle(request, context: context, facts: facts, span: nil, next: next)
            }
        }
        // The caller's span is the parent; events this request causes carry
        // this span's id, so each delivery links back to it.
        let requestID = TraceContext.requestID(from: request.headers[.requestID])
        var parent = InstrumentationContext.topLevel
        parent.spanIdentity = request.headers[.traceparent].flatMap(SpanIdentity.init(traceparent:))
        let span = tracer.startSpan(request.method.rawValue, context: parent, ofKind: .server)
        defer { span.end() }
        span.attributes["http.request.method"] = request.method.rawValue
        span.attributes["url.path"] = request.uri.path
        span.attributes["northstar.request_id"] = requestID
        let facts = RequestFacts(requestID: requestID, traceparent: span.identity.traceparent)
        return try await InstrumentationContext.$current.withValue(span.context) {
            try await RequestFacts.$current.withValue(facts) {
                try await handle(request, context: context, facts: facts, span: span, next: next)
            }
        }
    }

    private func handle(_ request: Request, context: Context, facts: RequestFacts, span: RecordedSpan?,
                        next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let log = { (status: HTTPResponse.Status, code: String?, detail: String?) in
            self.log(request, route: context.endpointPath, facts: facts, status: status, started: started, code: code, detail: detail)
            if let span { Self.finish(span, request: request, route: context.endpointPath, facts: facts, status: status, code: code) }
        }
        // Errors are answered here, not thrown on, so their answers carry the id too.
        let answer = { (error: KernelError) throws -> Response in
            var response = try error.response(from: request, context: context)
            response.headers[.requestID] = facts.requestID
            return response
        }
        do {
            var response = try await next(request, context)
            log(response.status, nil, nil)
            response.headers[.requestID] = facts.requestID
            return response
        } catch let error as KernelError {
            log(error.status, error.code,
                error.status.code >= 500 ? [error.message, error.logDetail].compactMap { $0 }.joined(separator: ": ") : nil)
            return try answer(error)
        } catch let error as HTTPError {
            let mapped: KernelError = switch error.status {
            case .notFound where !allowed.methods(for: request.uri.path).isEmpty:
                KernelError(.methodNotAllowed, code: "method_not_allowed", message: "\(request.method) is not allowed here",
                            details: ["allow": .string(allowed.methods(for: request.uri.path).joined(separator: ", "))])
            case .notFound: KernelError(.notFound, code: "route_not_found", message: "no route \(request.method) \(request.uri.path)")
            case .methodNotAllowed: KernelError(.methodNotAllowed, code: "method_not_allowed", message: "\(request.method) is not allowed here")
            case .contentTooLarge: KernelError(.tooLarge, code: "body_too_large", message: "the body is too large")
            default: KernelError(error.status.code >= 500 ? .internalFailure : .invalid, code: "http_error",
                                 message: error.body ?? "\(error.status)")
            }
            log(mapped.status, mapped.code, nil)
            return try answer(mapped)
        } catch {
            logger.error("internal error", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)",
                                                      "error": "\(error)"])
            log(.internalServerError, "internal", nil)
            return try answer(KernelError(.internalFailure, code: "internal", message: "internal error; the server log has details"))
        }
    }

    /// What the server span says once the status is known, after
    /// OpenTelemetry's HTTP conventions: named by method and route template,
    /// failed only for a 5xx (a 4xx is the caller's mistake, not the server's).
    private static func finish(_ span: RecordedSpan, request: Request, route: String?, facts: RequestFacts,
                               status: HTTPResponse.Status, code: String?) {
        if let route, route.hasPrefix("/") {
            span.operationName = "\(request.method.rawValue) \(route)"
            span.attributes["http.route"] = route
        }
        span.attributes["http.response.status_code"] = Int64(status.code)
        if let tenant = facts.tenant { span.attributes["northstar.tenant"] = tenant }
        if let code { span.attributes["northstar.error_code"] = code }
        if status.code >= 500 { span.setStatus(SpanStatus(code: .error, message: code)) }
    }

    /// One line per request; a server-side failure (5xx) also says what
    /// failed (a backend down, a timeout), so an operator need not guess.
    private func log(_ request: Request, route: String?, facts: RequestFacts, status: HTTPResponse.Status,
                     started: ContinuousClock.Instant, code: String?, detail: String?) {
        metrics.increment("northstar_http_requests_total", [("status", String(status.code))])
        let elapsed = ContinuousClock.now - started
        // By route template: a path that matched no route is one label, not one per path.
        let template = route.flatMap { $0.hasPrefix("/") ? $0 : nil } ?? "unmatched"
        metrics.record("northstar_http_request_duration_seconds",
                       [("route", template), ("method", request.method.rawValue), ("status", String(status.code))],
                       duration: elapsed)
        if status == .conflict { metrics.increment("northstar_conflicts_total", [("code", code ?? "conflict")]) }
        if let tenantLabels, let tenant = facts.tenant {
            metrics.increment("northstar_tenant_requests_total", [("tenant", tenantLabels.label(for: tenant)), ("status", String(status.code))])
        }
        if let code { recentErrors?.record(code: code, status: Int(status.code), route: template) }
        // A request's line is a debug line unless it failed: built only when it is written.
        let level: Logger.Level = status.code >= 500 ? .error : .debug
        guard logger.logLevel <= level else { return }
        var metadata: Logger.Metadata = [
            "method": "\(request.method)", "path": "\(request.uri.path)", "status": "\(status.code)",
            "ms": "\(elapsed.components.attoseconds / 1_000_000_000_000_000 + elapsed.components.seconds * 1000)",
            "request_id": "\(facts.requestID)", "trace_id": "\(facts.traceID)",
        ]
        metadata["route"] = "\(template)"
        if let tenant = facts.tenant { metadata["tenant"] = "\(tenant)" }
        if let code { metadata["code"] = "\(code)" }
        if let detail { metadata["detail"] = "\(detail)" }
        logger.log(level: level, "request", metadata: metadata)
    }
}
