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

    init(requestID: String, traceparent: String) {
        self.requestID = requestID
        self.traceparent = traceparent
    }

    /// The 32 hex digits of the trace id.
    var traceID: String { String(traceparent.dropFirst(3).prefix(32)) }

    var tenant: String? {
        get { tenantBox.withLockedValue { $0 } }
        set { tenantBox.withLockedValue { $0 = newValue } }
    }
}
