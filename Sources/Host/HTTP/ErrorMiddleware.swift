import Hummingbird
import Logging

/// Every error leaves as `{"error": {"code", "message"}}`, and every request
/// is logged by method, path and status: never its query string or headers,
/// where credentials travel.
struct ErrorMiddleware<Context: Hummingbird.RequestContext>: RouterMiddleware {
    let logger = Logger(label: "northstar.http")
    let metrics: Metrics
    /// The methods each path takes, to tell 405 from 404.
    let allowed: AllowedMethods

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        do {
            let response = try await next(request, context)
            log(request, status: response.status, started: started)
            return response
        } catch let error as KernelError {
            log(request, status: error.status, started: started, code: error.code,
                detail: error.status.code >= 500 ? [error.message, error.logDetail].compactMap { $0 }.joined(separator: ": ") : nil)
            throw error
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
            log(request, status: mapped.status, started: started)
            throw mapped
        } catch {
            logger.error("internal error", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)",
                                                      "error": "\(error)"])
            log(request, status: .internalServerError, started: started)
            throw KernelError(.internalFailure, code: "internal", message: "internal error; the server log has details")
        }
    }

    /// One line per request; a server-side failure (5xx) also says what
    /// failed (a backend down, a timeout), so an operator need not guess.
    private func log(_ request: Request, status: HTTPResponse.Status, started: ContinuousClock.Instant,
                     code: String? = nil, detail: String? = nil) {
        metrics.increment("northstar_http_requests_total", [("status", String(status.code))])
        let elapsed = ContinuousClock.now - started
        var metadata: Logger.Metadata = [
            "method": "\(request.method)", "path": "\(request.uri.path)", "status": "\(status.code)",
            "ms": "\(elapsed.components.attoseconds / 1_000_000_000_000_000 + elapsed.components.seconds * 1000)",
        ]
        if let code { metadata["code"] = "\(code)" }
        if let detail { metadata["detail"] = "\(detail)" }
        logger.log(level: status.code >= 500 ? .error : .debug, "request", metadata: metadata)
    }
}
