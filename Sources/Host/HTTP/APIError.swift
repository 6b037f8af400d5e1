import Foundation
import HTTPTypes
import Hummingbird

/// An error a client sees: one HTTP status and one stable wire code.
///
/// The body is always `{"error": {"code": ..., "message": ...}}`. Codes are
/// stable (clients match on them); messages are for people and may change.
public struct APIError: Error, HTTPResponseError, Sendable, Equatable {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    /// Extra members of the `error` object (a conflict's `head_rev`, say).
    public let details: [String: JSONValue]

    public init(_ status: HTTPResponse.Status, code: String, message: String, details: [String: JSONValue] = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
    }

    public func response(from request: Request, context: some Hummingbird.RequestContext) throws -> Response {
        var members = details
        members["code"] = .string(code)
        members["message"] = .string(message)
        let body = JSONValue.object(["error": .object(members)]).encoded()
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: .init(data: body)))
    }
}

extension APIError {
    /// The one answer for "no such resource" and "not yours": same status,
    /// same code, same message, so nothing tells the two apart.
    public static func notFound(_ kind: String) -> APIError {
        APIError(.notFound, code: "not_found", message: "no such \(kind)")
    }

    public static func unauthorized(_ message: String) -> APIError {
        APIError(.unauthorized, code: "unauthorized", message: message)
    }

    public static func forbidden(_ message: String) -> APIError {
        APIError(.forbidden, code: "forbidden", message: message)
    }

    public static func badRequest(_ code: String, _ message: String) -> APIError {
        APIError(.badRequest, code: code, message: message)
    }
}
