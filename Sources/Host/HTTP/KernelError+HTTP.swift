import HTTPTypes
import Hummingbird

/// The one place a kernel error becomes an HTTP answer: REST responses,
/// `kernel_call` answers and refused transport handshakes all use it.
extension KernelError: HTTPResponseError {
    public var status: HTTPResponse.Status {
        switch kind {
        case .invalid: .badRequest
        case .unauthenticated: .unauthorized
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .methodNotAllowed: .methodNotAllowed
        case .conflict: .conflict
        case .gone: .gone
        case .tooLarge: .contentTooLarge
        case .tooManyRequests: .tooManyRequests
        case .rangeNotSatisfiable: .rangeNotSatisfiable
        case .unprocessable: .unprocessableContent
        case .unavailable: .serviceUnavailable
        case .timeout: .gatewayTimeout
        case .upstreamFailed: .badGateway
        case .internalFailure: .internalServerError
        }
    }

    public func response(from request: Request, context: some Hummingbird.RequestContext) throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if kind == .unauthenticated { headers[.wwwAuthenticate] = "Bearer" }
        if kind == .methodNotAllowed, case .string(let allow)? = details["allow"] { headers[.allow] = allow }
        // Whole seconds, as the header takes, never sooner than the body's exact `retry_after_ms`.
        if case .number(let milliseconds)? = details["retry_after_ms"] {
            headers[.retryAfter] = String(Int((milliseconds / 1000).rounded(.up)))
        }
        return Response(status: status, headers: headers, body: .init(byteBuffer: .init(data: json.encoded())))
    }
}
