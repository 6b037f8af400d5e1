import Foundation

/// The durable store behind the kernel: resources, their streams, and
/// idempotency records. SQLite implements it now; PostgreSQL will, so
/// nothing SQL-dialect-specific appears in this protocol.
public protocol EventStore: Sendable {
    /// Whether writes can succeed now (`/readyz` answers from it).
    var health: StoreHealth { get }

    /// Reads waiting for their turn now (reads take turns between tenants:
    /// `TenantLines`), for `/metrics`.
    var readsWaiting: Int { get }

    /// One small durable write, to find out whether writes work again.
    func probeWrite() async throws

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

    /// Up to `limit` events of `stream` with `seq > after`, in order, and no
    /// more once those read hold `maxBytes` of JSON: the page may end early,
    /// but it always holds the next event when there is one, so a reader that
    /// continues from the last `seq` it got moves on. Only an empty page means
    /// there is nothing more.
    func events(stream: StreamName, after: UInt64, limit: Int, maxBytes: Int) async throws -> EventPage

    /// Commits a command to a canvas in one durable step: the idempotency
    /// check, the `base_rev` check, `apply` on the head document, the new
    /// revision, the head, a snapshot every `snapshotEvery` revisions, and
    /// the `canvas.committed` event. `apply` runs inside the step and may
    /// throw to abandon it (nothing is written).
    func commit(_ command: CanvasCommand, canvas: Resource, actor: String, traceparent: String, snapshotEvery: Int64,
                apply: @escaping @Sendable (JSONValue) throws -> JSONValue) async throws -> CommitOutcome

    /// The head revision and document of a canvas.
    func head(canvas: String) async throws -> (rev: Int64, document: JSONValue)

    /// The newest snapshot of a canvas at or below revision `rev`: what
    /// rebuilds `rev` with the revisions after it.
    func snapshot(canvas: String, atOrBelow rev: Int64) async throws -> (rev: Int64, document: JSONValue)

    /// Up to `limit` revisions after `after`, in order, and no more once
    /// those read hold `maxBytes` of operations (at least one, as `events`).
    func revisions(canvas: String, after: Int64, limit: Int, maxBytes: Int) async throws -> [Revision]

    /// Records a new gesture and its stream, and appends `announce` (on the
    /// canvas stream), in one durable step.
    func createGesture(_ gesture: Gesture, announce: EventDraft) async throws -> StreamEvent

    /// The gesture with this id, whoever owns it (isolation is the caller's).
    func gesture(id: String) async throws -> Gesture?

    /// Up to `limit` of a canvas's gestures, oldest first (by creation time,
    /// then id), after `after` when given.
    func gestures(canvas: String, after: Gesture?, limit: Int) async throws -> [Gesture]

    /// Reads the gesture inside the write step, lets `change` check and
    /// update it and name the events to append, and writes all of it in one
    /// durable step; `change` may throw to abandon it (nothing is written).
    func updateGesture(id: String, _ change: @escaping @Sendable (inout Gesture) throws -> [EventDraft]) async throws -> (Gesture, [StreamEvent])
}

extension EventStore {
    /// Up to `limit` events of `stream` after `after`, within `EventPage.defaultMaxBytes`.
    func events(stream: StreamName, after: UInt64, limit: Int) async throws -> EventPage {
        try await events(stream: stream, after: after, limit: limit, maxBytes: EventPage.defaultMaxBytes)
    }

    /// Up to `limit` revisions after `after`, within `EventPage.defaultMaxBytes`.
    func revisions(canvas: String, after: Int64, limit: Int) async throws -> [Revision] {
        try await revisions(canvas: canvas, after: after, limit: limit, maxBytes: EventPage.defaultMaxBytes)
    }
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
