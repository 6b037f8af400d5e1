import HTTPTypes
import NIOConcurrencyHelpers

/// What a request's log line says beyond its method, path and status: its
/// ids, fixed when it arrives, and its tenant, once authentication tells it.
/// Carried as a task local from the outermost middleware to the handlers,
/// which run in the same task.
final class RequestFacts: Sendable {
    @TaskLocal static var current: RequestFacts?

    let requestID: String
    /// The request's W3C `traceparent` when well formed, or a new one; events
    /// it causes carry the same.
    let traceparent: String
    private let tenantBox = NIOLockedValueBox<String?>(nil)
    private let identityBox = NIOLockedValueBox<UserIdentity?>(nil)

    init(requestID: String, traceparent: String) {
        self.requestID = requestID
        self.traceparent = traceparent
    }

    /// A request's facts from its headers: the client's `x-request-id` and
    /// `traceparent` when well formed, new ones otherwise.
    convenience init(headers: HTTPFields) {
        self.init(requestID: TraceContext.requestID(from: headers[.requestID]),
                  traceparent: TraceContext.traceparent(from: headers[.traceparent]))
    }

    /// The 32 hex digits of the trace id.
    var traceID: String { String(traceparent.dropFirst(3).prefix(32)) }

    var tenant: String? {
        get { tenantBox.withLockedValue { $0 } }
        set { tenantBox.withLockedValue { $0 = newValue } }
    }

    /// Whose principal a transport was lent while it handled this request
    /// (`authenticate`): for a WebSocket handshake, the user whose messages
    /// the socket will carry.
    var identity: UserIdentity? {
        get { identityBox.withLockedValue { $0 } }
        set { identityBox.withLockedValue { $0 = newValue } }
    }
}

extension HTTPField.Name {
    /// The request id: read from a request, and sent back on every answer.
    static let requestID = HTTPField.Name("x-request-id")!
    static let traceparent = HTTPField.Name("traceparent")!
}
