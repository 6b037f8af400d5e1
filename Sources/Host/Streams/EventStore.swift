import Foundation

/// The durable store behind the kernel: resources, their streams, and
/// idempotency records. SQLite implements it now; PostgreSQL will, so
/// nothing SQL-dialect-specific appears in this protocol.
public protocol EventStore: Sendable {
    /// Records a new resource.
    func create(_ resource: Resource) async throws

    /// The resource with this id, whoever owns it; isolation is the
    /// resolver's job, not the store's.
    func resource(id: String) async throws -> Resource?

    /// Appends one event; returns it only once it is durable. Per-stream
    /// `seq` is assigned from 1 without gaps, also under concurrent appends.
    /// - Parameter idempotencyKey: when given, a second append with the same
    ///   key returns the first event (`.replayed`) if `fingerprint` matches,
    ///   or `.keyReused` if it does not; nothing new is written either way.
    func append(_ draft: EventDraft, idempotencyKey: String?, fingerprint: String) async throws -> AppendOutcome

    /// Up to `limit` events of `stream` with `seq > after`, in order.
    func events(stream: StreamName, after: UInt64, limit: Int) async throws -> EventPage
}

/// What an append did.
public enum AppendOutcome: Sendable, Equatable {
    /// Written now.
    case appended(StreamEvent)
    /// Written before under the same idempotency key and the same body.
    case replayed(StreamEvent)
    /// The idempotency key was used before with a different body.
    case keyReused
}
