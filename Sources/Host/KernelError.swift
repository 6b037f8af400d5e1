/// An error the kernel answers with: a kind, a stable wire code, a message
/// for people, and details for programs (a conflict's `head_rev`, say).
///
/// It knows nothing of HTTP: REST maps a kind to a status in one place
/// (`KernelError+HTTP.swift`), `kernel_call` answers transports through that
/// same mapping, and subscribe refusals hand transports the code as a field.
/// Codes are stable, clients match on them; messages may change.
public struct KernelError: Error, Sendable, Equatable {
    /// What went wrong, in the kernel's terms.
    public enum Kind: String, Sendable {
        /// The request is malformed or names something impossible.
        case invalid
        /// No valid credential.
        case unauthenticated
        /// A valid credential without the scope the operation needs.
        case forbidden
        /// No such resource, or not the caller's: one answer for both.
        case notFound
        case methodNotAllowed
        /// The resource's state conflicts (a stale `base_rev`, a reused id).
        case conflict
        /// What was asked for has been pruned from the log.
        case gone
        case tooLarge
        /// Over a rate: the caller may retry later (`retry_after_ms` says when).
        case tooManyRequests
        case rangeNotSatisfiable
        /// Well-formed but cannot apply (a failing patch, a document too deep).
        case unprocessable
        /// A dependency (the store, a storage backend) cannot serve now.
        case unavailable
        /// A dependency did not answer in time.
        case timeout
        /// A dependency answered wrongly.
        case upstreamFailed
        /// A bug or an unexpected failure; the log has the details.
        case internalFailure
    }

    public let kind: Kind
    public let code: String
    public let message: String
    /// Extra members of the `error` object.
    public let details: [String: JSONValue]
    /// For the log only, never sent: what a dependency said (a storage
    /// plugin's message may hold server paths or socket errors).
    public let logDetail: String?

    public init(_ kind: Kind, code: String, message: String, details: [String: JSONValue] = [:], logDetail: String? = nil) {
        self.kind = kind
        self.code = code
        self.message = message
        self.details = details
        self.logDetail = logDetail
    }

    /// The wire body: `{"error": {"code", "message", ...details}}`.
    public var json: JSONValue {
        var members = details
        members["code"] = .string(code)
        members["message"] = .string(message)
        return .object(["error": .object(members)])
    }
}

extension KernelError {
    /// The one answer for "no such resource" and "not yours": same kind,
    /// same code, same message, so nothing tells the two apart.
    public static func notFound(_ resource: String) -> KernelError {
        KernelError(.notFound, code: "not_found", message: "no such \(resource)")
    }

    public static func unauthenticated(_ message: String) -> KernelError {
        KernelError(.unauthenticated, code: "unauthorized", message: message)
    }

    public static func forbidden(_ message: String) -> KernelError {
        KernelError(.forbidden, code: "forbidden", message: message)
    }

    public static func invalid(_ code: String, _ message: String) -> KernelError {
        KernelError(.invalid, code: code, message: message)
    }
}
