import Foundation
import Logging
import NIOCore
import PostgresNIO

/// The cluster store: one PostgreSQL database shared by every node.
///
/// Each write is one transaction. Appends lock their stream's row first, so
/// `seq` is assigned without races or gaps across nodes, and an idempotency
/// key is checked after the lock, so two nodes given the same key agree on
/// one outcome. Canvas commands lock the canvas head the same way: for one
/// `base_rev` exactly one command wins. Every appended event sends a
/// notification (`northstar_events`, payload `<seq> <stream>`) when its
/// transaction commits; `LogFollower` turns those into live delivery on
/// every node, reading the events themselves from the log.
///
/// Group commit: appends to one stream, and commands on one canvas, that
/// arrive while the previous batch for it commits share the next
/// transaction (`PostgresAppendBatcher`, `commit` with `KeyedBatches`), so
/// the row lock that orders them is taken once per batch. Batches for
/// different streams run side by side on pooled connections, and
/// PostgreSQL flushes the WAL of transactions that commit together once.
public final class PostgresStore: EventStore, Sendable {
    static let channel = "northstar_events"

    let client: PostgresClient
    let address: PostgresAddress
    let retainPerStream: Int64
    let logger: Logger
    public let health = StoreHealth()
    /// Told of each committed write's duration (for `/metrics`).
    private let onCommit: @Sendable (CommitTimings) -> Void
    /// Told of each event this node appended, once committed (metrics and
    /// console rates; live delivery goes through `LogFollower`).
    private let onAppend: @Sendable (StreamEvent) -> Void
    private let running: Task<Void, Never>
    /// Group commit for appends, per stream.
    private let appends = PostgresAppendBatcher()
    /// Group commit for canvas commands, per canvas.
    let commands = KeyedBatches<String, PlannedCommand, CommitOutcome>(maxBatch: 256)
    /// Reads take turns between tenants (`TenantTurns`), twice as many at
    /// once as the pool has connections: the reads past those wait in the
    /// tenants' lines, not in the pool's queue, where a write would wait
    /// behind all of them.
    private let readTurns: TenantTurns

    /// Starts the connection pool; nothing is sent until `migrate`.
    init(address: PostgresAddress, poolSize: Int, retainPerStream: Int64, logger: Logger,
         onAppend: @escaping @Sendable (StreamEvent) -> Void = { _ in },
         onCommit: @escaping @Sendable (CommitTimings) -> Void = { _ in }) {
        var configuration = address.configuration
        configuration.options.maximumConnections = poolSize
        configuration.options.connectTimeout = .seconds(5)
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        self.address = address
        self.retainPerStream = retainPerStream
        self.logger = logger
        self.onCommit = onCommit
        self.onAppend = onAppend
        // A read holds its turn a little longer than its connection (until
        // its deadline's task has ended too): with one turn per connection,
        // the turns ran out while connections sat free (`reader_fairness.py`).
        readTurns = TenantTurns(reads: 2 * poolSize)
        running = Task { await client.run() }
    }

    deinit { running.cancel() }

    /// A store on `url`, its schema migrated: for tools and benchmarks (a node
    /// makes its own from the config).
    public static func open(url: String, poolSize: Int = 10, retainPerStream: Int64 = 0,
                            onAppend: @escaping @Sendable (StreamEvent) -> Void = { _ in },
                            onCommit: @escaping @Sendable (CommitTimings) -> Void = { _ in }) async throws -> PostgresStore {
        let address: PostgresAddress
        do {
            address = try PostgresAddress(url: url)
        } catch {
            throw StoreOpenError(path: "postgres_url", reason: "\(error)")
        }
        let store = PostgresStore(address: address, poolSize: poolSize, retainPerStream: retainPerStream,
                                  logger: Logger(label: "northstar.store"), onAppend: onAppend, onCommit: onCommit)
        try await store.migrate()
        return store
    }

    /// Brings the schema to this binary's version (see `PostgresSchema`).
    /// - Throws: `StoreOpenError` when the database cannot be reached or is newer.
    func migrate() async throws {
        do {
            // A connection of its own, not the pool's: the pool retries forever, this fails fast.
            let connection = try await PostgresConnection.connect(configuration: try address.connectionConfiguration(),
                                                                  id: 0, logger: logger)
            do {
                try await PostgresSchema.migrate(connection, address: address.redacted, logger: logger)
                try await connection.close()
            } catch {
                try? await connection.close()
                throw error
            }
        } catch let error as StoreOpenError {
            throw error
        } catch {
            throw StoreOpenError(path: address.redacted, reason: "the database cannot be used: \(Self.describe(error))")
        }
    }

    /// Ends the pool's connections.
    func close() { running.cancel() }

    // MARK: Transactions

    /// Runs `body` in one transaction and commits it; an error rolls it back
    /// and comes back unchanged, except that a database out of reach is
    /// answered 503 `store_unavailable` and marks the store unhealthy.
    /// - Parameter writes: how many callers' writes the transaction holds (a batch of appends), for `/metrics`.
    func write<T: Sendable>(writes: Int = 1, _ body: @escaping @Sendable (PostgresConnection, Appended) async throws -> T) async throws -> T {
        try await Traced.span("store.commit", ["db.system.name": "postgresql"]) { _ in
            let started = ContinuousClock.now
            let appended = Appended()
            let (value, commit) = try await transaction("BEGIN") { connection in try await body(connection, appended) }
            onCommit(CommitTimings(transaction: ContinuousClock.now - started, commit: commit, writes: writes))
            appended.events.forEach(onAppend)
            if health.current != nil { health.wrote() }
            return value
        }
    }

    public var readsWaiting: Int { readTurns.waiting }

    /// A read that sees one snapshot of the database, in its tenant's turn (`TenantTurns`).
    func read<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await readTurns.withTurn(of: ReadingTenant.current) {
            try await transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", body).value
        }
    }

    /// The body's value, and how long its COMMIT (the WAL flush) took.
    private func transaction<T: Sendable>(_ begin: PostgresQuery, _ body: @escaping @Sendable (PostgresConnection) async throws -> T)
        async throws -> (value: T, commit: Duration) {
        let logger = self.logger
        do {
            return try await withDeadline(Self.leaseTimeout) { [client] in try await client.withConnection { connection in
                try await connection.query(begin, logger: logger)
                do {
                    let value = try await body(connection)
                    let committing = ContinuousClock.now
                    try await connection.query("COMMIT", logger: logger)
                    return (value, ContinuousClock.now - committing)
                } catch {
                    _ = try? await connection.query("ROLLBACK", logger: logger)
                    throw error
                }
            } }
        } catch let error as PSQLError where error.serverInfo == nil {
            // No answer from the server: the database is out of reach.
            return try unavailable(error)
        } catch let error as DeadlineExceeded {
            // The pool found no connection in time, or the database stopped answering;
            // a write cut off here may still have committed (a retry with its key is safe).
            return try unavailable(error)
        }
    }

    /// How long a request waits for a connection (or for its queries, once
    /// it has one) before it is answered 503: the pool itself waits as long
    /// as the database stays away.
    static let leaseTimeout = Duration.seconds(5)

    private struct DeadlineExceeded: Error, CustomStringConvertible {
        var description: String { "no answer from the database within \(PostgresStore.leaseTimeout)" }
    }

    /// `body`'s result, or `DeadlineExceeded` after `limit` (then `body` is cancelled).
    private func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: limit)
                throw DeadlineExceeded()
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    private func unavailable<T>(_ error: any Error) throws -> T {
        logger.error("store unreachable", metadata: ["database": "\(address.redacted)", "error": "\(Self.describe(error))"])
        throw health.refuse(.failing)
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            return "\(error.code)"
        }
        return "\(error)"
    }

    // MARK: EventStore

    public func probeWrite() async throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        _ = try await write { connection, _ in
            try await connection.query("""
                INSERT INTO northstar.write_probe VALUES (1, \(now)) ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms
                """, logger: self.logger)
        }
    }

    public func create(_ resource: Resource) async throws {
        try await write { connection, _ in
            let createdAt = Int64((resource.createdAt.timeIntervalSince1970 * 1000).rounded())
            try await connection.query("""
                INSERT INTO northstar.resources VALUES (\(resource.id), \(resource.kind.rawValue), \(resource.tenant), \(resource.env),
                    \(resource.createdBy), \(createdAt), \(resource.title), \(resource.metadata.jsonText), \(resource.headRev))
                """, logger: self.logger)
            try await connection.query("INSERT INTO northstar.streams VALUES (\(resource.stream.rawValue), 0, 1)", logger: self.logger)
            if resource.kind == .canvas {
                let empty = Data("{}".utf8)
                try await connection.query("INSERT INTO northstar.canvas_heads VALUES (\(resource.id), 0, \(empty))", logger: self.logger)
                try await connection.query("INSERT INTO northstar.snapshots VALUES (\(resource.id), 0, \(empty))", logger: self.logger)
            }
        }
    }

    public func resource(id: String) async throws -> Resource? {
        try await read { connection in
            let rows = try await connection.query("""
                SELECT id, kind, tenant, env, created_by, created_at_ms, title, metadata, head_rev FROM northstar.resources WHERE id = \(id)
                """, logger: self.logger).collect()
            guard let row = rows.first else { return nil }
            let (id, kindName, tenant, env, createdBy, createdAt, title, metadataText, headRev) =
                try row.decode((String, String, String, String, String, Int64, String?, String, Int64).self)
            guard let kind = ResourceKind(rawValue: kindName) else {
                throw StoreCorruption(column: "resources.kind", why: "an unknown kind")
            }
            let metadata: JSONValue
            do {
                metadata = try JSONValue.parse(metadataText)
            } catch is JSONValue.ParseError {
                throw StoreCorruption(column: "resources.metadata", why: "not JSON")
            }
            return Resource(id: id, kind: kind, tenant: tenant, env: env, createdBy: createdBy,
                            createdAt: Date(timeIntervalSince1970: Double(createdAt) / 1000), title: title, metadata: metadata,
                            headRev: headRev)
        }
    }

    public func append(_ draft: EventDraft, idempotencyKey: String?, fingerprint: String) async throws -> AppendOutcome {
        // The span covers the wait for the stream's batch and its commit: what the caller waits for.
        try await Traced.span("store.commit", ["db.system.name": "postgresql"]) { _ in
            try await appends.append(draft, idempotencyKey: idempotencyKey, fingerprint: fingerprint, on: self)
        }
    }

    public func events(stream: StreamName, after: UInt64, limit: Int, maxBytes: Int) async throws -> EventPage {
        try await read { connection in
            let head = try await connection.query("""
                SELECT head_seq, first_seq FROM northstar.streams WHERE stream = \(stream.rawValue)
                """, logger: self.logger).collect().first?.decode((Int64, Int64).self)
            // A stream that has no row yet has no events: head 0, first 1.
            let (headSeq, firstSeq) = (UInt64(head?.0 ?? 0), UInt64(head?.1 ?? 1))
            // At the head (a subscriber going live, a read of the head alone) there is no page to read.
            guard after < headSeq, limit > 0 else { return EventPage(events: [], headSeq: headSeq, firstSeq: firstSeq) }
            let page = PageQuery.events.postgres(owner: stream.rawValue, after: Int64(clamping: after), limit: limit, maxBytes: maxBytes)
            let rows = try await connection.query(page, logger: self.logger).collect()
            return EventPage(events: try rows.map { try Self.event(of: stream, $0) }, headSeq: headSeq, firstSeq: firstSeq)
        }
    }

    /// Up to `limit` events of `stream` after `after`: one plain query, no
    /// transaction (live delivery reads only the events, and reads them on
    /// every notification: the byte budget's query costs it about 0.1 ms more,
    /// so its caller bounds memory with a small `limit` instead).
    func events(of stream: StreamName, after: UInt64, limit: Int) async throws -> [StreamEvent] {
        try await client.query("""
            SELECT seq, id, type, json FROM northstar.events WHERE stream = \(stream.rawValue) AND seq > \(Int64(clamping: after))
            ORDER BY seq LIMIT \(Int64(limit))
            """, logger: logger).collect().map { try Self.event(of: stream, $0) }
    }

    private static func event(of stream: StreamName, _ row: PostgresRow) throws -> StreamEvent {
        let (seq, id, type, json) = try row.decode((Int64, String, String, Data).self)
        return StreamEvent(stream: stream, seq: UInt64(seq), id: id, type: type, json: json)
    }

    // MARK: Inside a write

    /// The events a write appended, told after its commit. One write's, in
    /// one task: not shared.
    final class Appended: @unchecked Sendable {
        var events: [StreamEvent] = []
    }

    /// Locks the stream's row until the transaction ends; its head and first seq.
    static func lockStream(_ stream: String, _ connection: PostgresConnection, logger: Logger) async throws -> (head: Int64, first: Int64) {
        guard let row = try await connection.query("""
            SELECT head_seq, first_seq FROM northstar.streams WHERE stream = \(stream) FOR UPDATE
            """, logger: logger).collect().first else {
            throw StoreCorruption(column: "streams", why: "no stream \(stream)")
        }
        let (head, first) = try row.decode((Int64, Int64).self)
        return (head, first)
    }

    /// Places one event at the head of a stream the caller has locked (see `insertEvents`).
    static func insertEvent(_ draft: EventDraft, head: (head: Int64, first: Int64), retain: Int64,
                            _ connection: PostgresConnection, _ appended: Appended, logger: Logger) async throws -> StreamEvent {
        try await insertEvents([(draft, nil, "")], stream: draft.stream, head: head, retain: retain, connection, appended,
                               logger: logger)[0]
    }

    /// Places events at the head of a stream the caller has locked, in one
    /// statement: the events, the new head, what retention prunes, their
    /// idempotency records, and one notification each, sent at COMMIT.
    static func insertEvents(_ drafts: [(draft: EventDraft, key: String?, fingerprint: String)], stream: StreamName,
                             head: (head: Int64, first: Int64), retain: Int64,
                             _ connection: PostgresConnection, _ appended: Appended, logger: Logger) async throws -> [StreamEvent] {
        guard !drafts.isEmpty else { return [] }
        let now = Date()
        let events = drafts.enumerated().map { index, planned in
            let seq = UInt64(head.head) + UInt64(index) + 1
            let id = Identifier.make(prefix: "ev_")
            return StreamEvent(stream: stream, seq: seq, id: id, type: planned.draft.type,
                               json: planned.draft.encoded(seq: seq, id: id, timestamp: now))
        }
        let last = head.head + Int64(events.count)
        var first = head.first
        if retain > 0, last - first + 1 > retain { first = last - retain + 1 }
        let kept = zip(drafts, events).compactMap { planned, event in planned.key.map { ($0, planned.fingerprint, Int64(event.seq)) } }
        _ = try await connection.query("""
            WITH inserted AS (
                     INSERT INTO northstar.events SELECT \(stream.rawValue), * FROM unnest(
                         \(events.map { Int64($0.seq) })::bigint[], \(events.map(\.id))::text[], \(events.map(\.type))::text[],
                         \(events.map { ByteBuffer(data: $0.json) })::bytea[])),
                 moved AS (UPDATE northstar.streams SET head_seq = \(last), first_seq = \(first) WHERE stream = \(stream.rawValue)),
                 pruned AS (DELETE FROM northstar.events WHERE stream = \(stream.rawValue) AND seq < \(first)),
                 remembered AS (INSERT INTO northstar.idempotency SELECT \(stream.rawValue), * FROM unnest(
                         \(kept.map(\.0))::text[], \(kept.map(\.1))::text[], \(kept.map(\.2))::bigint[]))
            SELECT pg_notify(\(channel), payload) FROM unnest(\(events.map { "\($0.seq) \(stream.rawValue)" })::text[]) AS payload
            """, logger: logger).collect()
        appended.events.append(contentsOf: events)
        return events
    }

    /// The event at `seq`, for a replayed append; one that retention pruned
    /// is answered with its identity only, as on SQLite.
    static func event(_ stream: StreamName, seq: UInt64, type: String, _ connection: PostgresConnection,
                      logger: Logger) async throws -> StreamEvent {
        if let row = try await connection.query("""
            SELECT id, type, json FROM northstar.events WHERE stream = \(stream.rawValue) AND seq = \(Int64(seq))
            """, logger: logger).collect().first {
            let (id, type, json) = try row.decode((String, String, Data).self)
            return StreamEvent(stream: stream, seq: seq, id: id, type: type, json: json)
        }
        let stub = JSONValue.object(["v": .number(1), "id": .null, "stream": .string(stream.rawValue), "seq": .number(Double(seq)),
                                     "type": .string(type), "pruned": .bool(true)])
        return StreamEvent(stream: stream, seq: seq, id: "", type: type, json: stub.encoded())
    }
}
