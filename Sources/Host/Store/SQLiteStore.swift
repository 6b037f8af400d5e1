import Dispatch
import Foundation
import NIOConcurrencyHelpers

/// The embedded store: one SQLite file in WAL mode, `synchronous = FULL`.
///
/// All writes go through one connection, in batches that commit together
/// (`WriteBatcher`), so per-stream `seq` is assigned without races and one
/// fsync covers every write that arrived while the previous one ran; reads
/// use a second connection on their own queue, which WAL lets run beside
/// the writer. `onAppend` is called after each commit, in commit order: the
/// live fan-out hangs off it and sees every stream's events in `seq` order.
public final class SQLiteStore: EventStore, @unchecked Sendable {
    /// The one writing connection, used only from the batcher's queue (and
    /// by tests while no write is in flight).
    let writer: SQLiteConnection
    private let reader: SQLiteConnection
    private let batcher: WriteBatcher
    private let reads = FairReadQueue(label: "northstar.store.read")
    let retainPerStream: Int64
    let onAppend: @Sendable (StreamEvent) -> Void
    /// Whether writes can succeed now; `/readyz` reads it.
    public let health = StoreHealth()

    /// Opens or creates the database at `path`.
    /// - Parameters:
    ///   - retainPerStream: events kept per stream (0 keeps all).
    ///   - onAppend: called after each durable append, in commit order.
    ///   - onCommit: told of each committed batch's timings (for `/metrics`).
    public init(path: String, retainPerStream: Int64 = 0, onAppend: @escaping @Sendable (StreamEvent) -> Void = { _ in },
                onCommit: @escaping @Sendable (CommitTimings) -> Void = { _ in }) throws {
        writer = try SQLiteConnection(path: path)
        try Self.migrate(writer, path: path)
        reader = try SQLiteConnection(path: path)
        self.retainPerStream = retainPerStream
        self.onAppend = onAppend
        batcher = WriteBatcher(connection: writer, health: health, publish: onAppend, observe: onCommit)
    }

    /// Refuses a database that cannot take writes (a read-only file, folder
    /// or mount, a full disk), at start, before anything is served.
    /// - Throws: `StoreOpenError` naming the file and the reason.
    public static func openWritable(path: String, retainPerStream: Int64,
                                    onAppend: @escaping @Sendable (StreamEvent) -> Void,
                                    onCommit: @escaping @Sendable (CommitTimings) -> Void = { _ in }) throws -> SQLiteStore {
        do {
            let store = try SQLiteStore(path: path, retainPerStream: retainPerStream, onAppend: onAppend, onCommit: onCommit)
            try store.writer.query("INSERT OR REPLACE INTO write_probe (id, at_ms) VALUES (1, 0)")
            return store
        } catch let error as SQLiteError {
            let reason = StoreHealth.problem(of: error).map { StoreHealth.message($0) } ?? error.description
            throw StoreOpenError(path: path, reason: "the database cannot be written (\(error.message)): \(reason)")
        }
    }

    /// Proves the database takes writes again: one small durable write, made
    /// while `health` reports a problem, so readiness comes back as soon as
    /// writes do.
    public func probeWrite() async throws {
        _ = try await onWriter { db, _ in
            try db.query("INSERT OR REPLACE INTO write_probe (id, at_ms) VALUES (1, ?)",
                         [.integer(Int64(Date().timeIntervalSince1970 * 1000))])
        }
    }

    /// The schema version this binary writes (`PRAGMA user_version`).
    /// 1: events in a rowid table (a 1 KB event fits its page instead of
    /// spilling into a 4 KB overflow page), idempotency records without a
    /// copy of the event.
    static let schemaVersion: Int64 = 1

    static let schema = """
        CREATE TABLE IF NOT EXISTS resources (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, tenant TEXT NOT NULL, env TEXT NOT NULL,
            created_by TEXT NOT NULL, created_at_ms INTEGER NOT NULL, title TEXT, metadata TEXT NOT NULL,
            head_rev INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE IF NOT EXISTS streams (
            stream TEXT PRIMARY KEY, head_seq INTEGER NOT NULL, first_seq INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS events (
            stream TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, type TEXT NOT NULL,
            json BLOB NOT NULL, UNIQUE (stream, seq));
        CREATE TABLE IF NOT EXISTS idempotency (
            stream TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, seq INTEGER NOT NULL,
            PRIMARY KEY (stream, key)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS canvas_heads (
            canvas TEXT PRIMARY KEY, head_rev INTEGER NOT NULL, document BLOB NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS revisions (
            canvas TEXT NOT NULL, rev INTEGER NOT NULL, base_rev INTEGER NOT NULL, command_id TEXT NOT NULL,
            actor TEXT NOT NULL, ts TEXT NOT NULL, ops BLOB NOT NULL, event_seq INTEGER NOT NULL,
            PRIMARY KEY (canvas, rev)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS snapshots (
            canvas TEXT NOT NULL, rev INTEGER NOT NULL, document BLOB NOT NULL, PRIMARY KEY (canvas, rev)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS gestures (
            id TEXT PRIMARY KEY, canvas TEXT NOT NULL, created_ms INTEGER NOT NULL, state BLOB NOT NULL) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS gestures_by_canvas ON gestures (canvas, created_ms);
        CREATE TABLE IF NOT EXISTS write_probe (id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS commands (
            canvas TEXT NOT NULL, command_id TEXT NOT NULL, fingerprint TEXT NOT NULL, rev INTEGER NOT NULL,
            PRIMARY KEY (canvas, command_id)) WITHOUT ROWID;
        """

    /// Schema 0 to 1, in one transaction: events move to a rowid table and
    /// idempotency records drop their copy of the event.
    static let migrationTo1 = """
        CREATE TABLE events_v1 (
            stream TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, type TEXT NOT NULL,
            json BLOB NOT NULL, UNIQUE (stream, seq));
        INSERT INTO events_v1 (stream, seq, id, type, json) SELECT stream, seq, id, type, json FROM events ORDER BY stream, seq;
        DROP TABLE events;
        ALTER TABLE events_v1 RENAME TO events;
        CREATE TABLE idempotency_v1 (
            stream TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, seq INTEGER NOT NULL,
            PRIMARY KEY (stream, key)) WITHOUT ROWID;
        INSERT INTO idempotency_v1 SELECT stream, key, fingerprint, seq FROM idempotency;
        DROP TABLE idempotency;
        ALTER TABLE idempotency_v1 RENAME TO idempotency;
        """

    /// Brings the database to `schemaVersion`; refuses one written by a newer binary.
    private static func migrate(_ db: SQLiteConnection, path: String) throws {
        let version = try db.query("PRAGMA user_version").first?[0].integer ?? 0
        guard version <= schemaVersion else {
            throw StoreOpenError(path: path, reason: "the database has schema \(version), written by a newer Northstar; this one knows schemas up to \(schemaVersion). Run the newer version, or restore a backup")
        }
        guard version < schemaVersion else { return }
        try db.execute("BEGIN IMMEDIATE")
        do {
            let old = try db.query("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'").first?[0].text
            if let old, old.contains("WITHOUT ROWID") { try db.execute(migrationTo1) }
            try db.execute(schema)
            try db.execute("PRAGMA user_version = \(schemaVersion)")
            try db.execute("COMMIT")
        } catch {
            try? db.execute("ROLLBACK")
            throw error
        }
    }

    /// Runs `body` in the writer's next batch (see `WriteBatcher`), and
    /// returns once that batch has committed. Events `body` adds to its
    /// second argument are published after the commit, in order.
    func onWriter<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection, inout [StreamEvent]) throws -> T) async throws -> T {
        // The span covers the wait for the batch and its fsync: what the caller waits for.
        try await Traced.span("store.commit", ["db.system.name": "sqlite"]) { _ in try await batcher.submit(body) }
    }

    public var readsWaiting: Int { reads.waiting }

    /// Runs `body` on the reading connection, in its tenant's turn. A read
    /// whose task is cancelled before its turn is skipped when the turn
    /// comes (`CancellationError`): a client that subscribes and leaves,
    /// again and again, costs no reads nobody will use.
    func onReader<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        let tenant = ReadingTenant.current
        let cancelled = NIOLockedValueBox(false)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                reads.submit(tenant: tenant) { [reader] in
                    if cancelled.withLockedValue({ $0 }) { return continuation.resume(throwing: CancellationError()) }
                    continuation.resume(with: Result { try body(reader) })
                }
            }
        } onCancel: {
            cancelled.withLockedValue { $0 = true }
        }
    }

    public func create(_ resource: Resource) async throws {
        try await onWriter { db, _ in
            do {
                try db.query("INSERT INTO resources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                    .text(resource.id), .text(resource.kind.rawValue), .text(resource.tenant), .text(resource.env),
                    .text(resource.createdBy), .integer(Int64((resource.createdAt.timeIntervalSince1970 * 1000).rounded())),
                    resource.title.map(SQLValue.text) ?? .null, .text(resource.metadata.jsonText),
                    .integer(resource.headRev),
                ])
                try db.query("INSERT INTO streams VALUES (?, 0, 1)", [.text(resource.stream.rawValue)])
                if resource.kind == .canvas {
                    try db.query("INSERT INTO canvas_heads VALUES (?, 0, ?)", [.text(resource.id), .blob(Array("{}".utf8))])
                    try db.query("INSERT INTO snapshots VALUES (?, 0, ?)", [.text(resource.id), .blob(Array("{}".utf8))])
                }
            }
        }
    }

    public func resource(id: String) async throws -> Resource? {
        try await onReader { db in
            let rows = try db.query("""
                SELECT id, kind, tenant, env, created_by, created_at_ms, title, metadata, head_rev
                FROM resources WHERE id = ?
                """, [.text(id)])
            guard let row = rows.first else { return nil }
            guard let kind = ResourceKind(rawValue: try row.text(1, "resources.kind")) else {
                throw StoreCorruption(column: "resources.kind", why: "an unknown kind")
            }
            let metadata: JSONValue
            do {
                metadata = try JSONValue.parse(try row.text(7, "resources.metadata"))
            } catch is JSONValue.ParseError {
                throw StoreCorruption(column: "resources.metadata", why: "not JSON")
            }
            return Resource(id: try row.text(0, "resources.id"), kind: kind, tenant: try row.text(2, "resources.tenant"),
                            env: try row.text(3, "resources.env"), createdBy: try row.text(4, "resources.created_by"),
                            createdAt: Date(timeIntervalSince1970: Double(try row.integer(5, "resources.created_at_ms")) / 1000),
                            title: row[6].text, metadata: metadata, headRev: try row.integer(8, "resources.head_rev"))
        }
    }

    public func append(_ draft: EventDraft, idempotencyKey: String?, fingerprint: String) async throws -> AppendOutcome {
        let retain = retainPerStream
        return try await onWriter { db, published in
            let stream = draft.stream.rawValue
            if let key = idempotencyKey {
                let previous = try db.query("SELECT fingerprint, seq FROM idempotency WHERE stream = ? AND key = ?",
                                            [.text(stream), .text(key)])
                if let row = previous.first {
                    guard try row.text(0, "idempotency.fingerprint") == fingerprint else { return .keyReused }
                    let seq = UInt64(try row.integer(1, "idempotency.seq"))
                    return .replayed(try Self.event(draft.stream, seq: seq, type: draft.type, db: db))
                }
            }
            let event = try Self.insertEvent(draft, retain: retain, db: db)
            if let key = idempotencyKey {
                try db.query("INSERT INTO idempotency VALUES (?, ?, ?, ?)",
                             [.text(stream), .text(key), .text(fingerprint), .integer(Int64(event.seq))])
            }
            published.append(event)
            return .appended(event)
        }
    }

    /// The event at `seq`, for a replayed append. The log keeps one copy of
    /// each event; one that retention has since pruned is answered with its
    /// identity only (`v`, `id`, `stream`, `seq`, `type`, `pruned: true`).
    static func event(_ stream: StreamName, seq: UInt64, type: String, db: SQLiteConnection) throws -> StreamEvent {
        if let row = try db.query("SELECT id, type, json FROM events WHERE stream = ? AND seq = ?",
                                  [.text(stream.rawValue), .integer(Int64(seq))]).first {
            return StreamEvent(stream: stream, seq: seq, id: try row.text(0, "events.id"), type: try row.text(1, "events.type"),
                               json: Data(try row.blob(2, "events.json")))
        }
        let stub = JSONValue.object(["v": .number(1), "id": .null, "stream": .string(stream.rawValue), "seq": .number(Double(seq)),
                                     "type": .string(type), "pruned": .bool(true)])
        return StreamEvent(stream: stream, seq: seq, id: "", type: type, json: stub.encoded())
    }

    /// Places one event at the stream's head, inside the caller's transaction,
    /// and prunes what retention no longer keeps.
    static func insertEvent(_ draft: EventDraft, retain: Int64, db: SQLiteConnection) throws -> StreamEvent {
        let stream = draft.stream.rawValue
        guard let head = try db.query("SELECT head_seq, first_seq FROM streams WHERE stream = ?", [.text(stream)]).first,
              let headSeq = head[0].integer, let firstSeq = head[1].integer else {
            throw SQLiteError(code: 0, message: "no stream \(stream)")
        }
        let seq = UInt64(headSeq + 1)
        let id = Identifier.make(prefix: "ev_")
        let json = draft.encoded(seq: seq, id: id, timestamp: Date())
        try db.query("INSERT INTO events VALUES (?, ?, ?, ?, ?)",
                     [.text(stream), .integer(Int64(seq)), .text(id), .text(draft.type), .blob(Array(json))])
        var newFirst = firstSeq
        if retain > 0, Int64(seq) - firstSeq + 1 > retain {
            newFirst = Int64(seq) - retain + 1
            try db.query("DELETE FROM events WHERE stream = ? AND seq < ?", [.text(stream), .integer(newFirst)])
        }
        try db.query("UPDATE streams SET head_seq = ?, first_seq = ? WHERE stream = ?",
                     [.integer(Int64(seq)), .integer(newFirst), .text(stream)])
        return StreamEvent(stream: draft.stream, seq: seq, id: id, type: draft.type, json: json)
    }

    public func events(stream: StreamName, after: UInt64, limit: Int, maxBytes: Int) async throws -> EventPage {
        try await onReader { db in
            // One read transaction, so the page and the head agree.
            try db.execute("BEGIN")
            defer { try? db.execute("COMMIT") }
            let head = try db.query("SELECT head_seq, first_seq FROM streams WHERE stream = ?", [.text(stream.rawValue)]).first
            // A stream that has no row yet has no events: head 0, first 1.
            let headSeq = UInt64(try head?.integer(0, "streams.head_seq") ?? 0)
            let firstSeq = UInt64(try head?.integer(1, "streams.first_seq") ?? 1)
            // At the head (a subscriber going live, a read of the head alone) there is no page to read.
            guard after < headSeq, limit > 0 else { return EventPage(events: [], headSeq: headSeq, firstSeq: firstSeq) }
            let rows = try PageQuery.events.sqlite(owner: stream.rawValue, after: Int64(clamping: after), limit: limit,
                                                   maxBytes: maxBytes, db: db)
            let events = try rows.map { row in
                StreamEvent(stream: stream, seq: UInt64(try row.integer(0, "events.seq")), id: try row.text(1, "events.id"),
                            type: try row.text(2, "events.type"), json: Data(try row.blob(3, "events.json")))
            }
            return EventPage(events: events, headSeq: headSeq, firstSeq: firstSeq)
        }
    }
}
