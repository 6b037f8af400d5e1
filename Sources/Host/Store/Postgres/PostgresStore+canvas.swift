import Foundation
import PostgresNIO

extension PostgresStore {
    public func commit(_ command: CanvasCommand, canvas: Resource, actor: String, traceparent: String, snapshotEvery: Int64,
                       apply: @escaping @Sendable (JSONValue) throws -> JSONValue) async throws -> CommitOutcome {
        // The span covers the wait for the canvas's batch and its commit: what the caller waits for.
        try await Traced.span("store.commit", ["db.system.name": "postgresql"]) { _ in
            try await commands.submit(PlannedCommand(command: command, actor: actor, traceparent: traceparent, apply: apply),
                                      key: canvas.id) { [self] _, batch in
                try await commit(batch, canvas: canvas, snapshotEvery: snapshotEvery)
            }
        }
    }

    /// One command waiting for its canvas's next batch.
    struct PlannedCommand: Sendable {
        let command: CanvasCommand
        let actor: String
        let traceparent: String
        let apply: @Sendable (JSONValue) throws -> JSONValue
    }

    /// Commands on one canvas that arrived together, in one transaction: the
    /// head's lock once, each command checked and applied in order against
    /// the head the previous one made (in memory), then every revision,
    /// event and record written by three statements and one COMMIT. A
    /// command that fails (its patch does not apply) fails alone.
    private func commit(_ batch: [PlannedCommand], canvas: Resource, snapshotEvery: Int64) async throws
        -> [Result<CommitOutcome, any Error>] {
        let retain = retainPerStream
        let logger = self.logger
        return try await write(writes: batch.count) { connection, appended in
            let id = canvas.id
            // The head's lock first: commands on one canvas from every node are linearized here.
            guard let head = try await connection.query("""
                SELECT head_rev, document FROM northstar.canvas_heads WHERE canvas = \(id) FOR UPDATE
                """, logger: logger).collect().first else {
                throw StoreCorruption(column: "canvas_heads", why: "no canvas head for \(id)")
            }
            let (storedRev, stored) = try head.decode((Int64, Data).self)
            var headRev = storedRev
            var document = try JSONValue.parse(stored)
            // Command ids recorded before this batch (read after the lock: another node's are committed by now).
            var recorded: [String: (fingerprint: String, rev: Int64)] = [:]
            for row in try await connection.query("""
                SELECT command_id, fingerprint, rev FROM northstar.commands WHERE canvas = \(id) AND command_id = ANY(\(batch.map(\.command.commandID)))
                """, logger: logger).collect() {
                let (commandID, fingerprint, rev) = try row.decode((String, String, Int64).self)
                recorded[commandID] = (fingerprint, rev)
            }
            enum Plan { case done(Result<CommitOutcome, any Error>), replay(Int64), new(Int) }
            var plans: [Plan] = []
            // The document is kept only where a snapshot is due.
            var made: [(planned: PlannedCommand, rev: Int64, timestamp: String, snapshot: JSONValue?)] = []
            for planned in batch {
                let command = planned.command
                if let known = recorded[command.commandID] {
                    plans.append(known.fingerprint == command.fingerprint ? .replay(known.rev) : .done(.success(.idReused)))
                    continue
                }
                if command.baseRev < headRev { plans.append(.done(.success(.conflict(headRev: headRev)))); continue }
                if command.baseRev > headRev { plans.append(.done(.success(.ahead(headRev: headRev)))); continue }
                do {
                    document = try planned.apply(document)
                } catch {
                    plans.append(.done(.failure(error)))
                    continue
                }
                headRev += 1
                recorded[command.commandID] = (command.fingerprint, headRev)
                plans.append(.new(made.count))
                made.append((planned, headRev, EventDraft.format(Date()), snapshotEvery > 0 && headRev % snapshotEvery == 0 ? document : nil))
            }
            var revisions: [Revision] = []
            var events: [StreamEvent] = []
            if !made.isEmpty {
                let stream = try await Self.lockStream(canvas.stream.rawValue, connection, logger: logger)
                events = try await Self.insertEvents(made.map { made in
                    (made.planned.command.committedEvent(on: canvas, rev: made.rev, actor: made.planned.actor,
                                                         traceparent: made.planned.traceparent), nil, "")
                }, stream: canvas.stream, head: stream, retain: retain, connection, appended, logger: logger)
                revisions = zip(made, events).map { made, event in
                    Revision(rev: made.rev, baseRev: made.planned.command.baseRev, commandID: made.planned.command.commandID,
                             actor: made.planned.actor, timestamp: made.timestamp, ops: made.planned.command.ops, eventSeq: event.seq)
                }
                let snapshots = made.compactMap { made in made.snapshot.map { (rev: made.rev, document: $0) } }
                // One statement for the rest: the head, the revisions, the command records, and the snapshots due.
                _ = try await connection.query("""
                    WITH head AS (UPDATE northstar.canvas_heads SET head_rev = \(headRev), document = \(document.encoded()) WHERE canvas = \(id)),
                         resource AS (UPDATE northstar.resources SET head_rev = \(headRev) WHERE id = \(id)),
                         revision AS (INSERT INTO northstar.revisions SELECT \(id), * FROM unnest(
                             \(revisions.map(\.rev))::bigint[], \(revisions.map(\.baseRev))::bigint[], \(revisions.map(\.commandID))::text[],
                             \(revisions.map(\.actor))::text[], \(revisions.map(\.timestamp))::text[],
                             \(revisions.map { ByteBuffer(data: $0.ops.encoded()) })::bytea[], \(revisions.map { Int64($0.eventSeq) })::bigint[])),
                         command AS (INSERT INTO northstar.commands SELECT \(id), * FROM unnest(
                             \(made.map(\.planned.command.commandID))::text[], \(made.map(\.planned.command.fingerprint))::text[],
                             \(made.map(\.rev))::bigint[]))
                    INSERT INTO northstar.snapshots SELECT \(id), * FROM unnest(
                        \(snapshots.map(\.rev))::bigint[], \(snapshots.map { ByteBuffer(data: $0.document.encoded()) })::bytea[])
                    """, logger: logger).collect()
            }
            // Each command's outcome; a replay names its revision, made in this batch or before.
            let madeNow = Dictionary(uniqueKeysWithValues: revisions.map { ($0.rev, $0) })
            var results: [Result<CommitOutcome, any Error>] = []
            for plan in plans {
                switch plan {
                case .done(let result): results.append(result)
                case .new(let index): results.append(.success(.committed(revisions[index], events[index])))
                case .replay(let rev):
                    if let revision = madeNow[rev] {
                        results.append(.success(.replayed(revision)))
                    } else if let revision = try await Self.revisions(canvas: id, after: rev - 1, limit: 1, connection, logger: logger).first {
                        results.append(.success(.replayed(revision)))
                    } else {
                        throw StoreCorruption(column: "commands", why: "a command of canvas \(id) names a missing revision \(rev)")
                    }
                }
            }
            return results
        }
    }

    public func head(canvas: String) async throws -> (rev: Int64, document: JSONValue) {
        let logger = self.logger
        return try await read { connection in
            guard let row = try await connection.query("""
                SELECT head_rev, document FROM northstar.canvas_heads WHERE canvas = \(canvas)
                """, logger: logger).collect().first else {
                throw StoreCorruption(column: "canvas_heads", why: "no canvas head for \(canvas)")
            }
            let (rev, document) = try row.decode((Int64, Data).self)
            return (rev, try JSONValue.parse(document))
        }
    }

    public func snapshot(canvas: String, atOrBelow rev: Int64) async throws -> (rev: Int64, document: JSONValue) {
        let logger = self.logger
        return try await read { connection in
            guard let row = try await connection.query("""
                SELECT rev, document FROM northstar.snapshots WHERE canvas = \(canvas) AND rev <= \(rev) ORDER BY rev DESC LIMIT 1
                """, logger: logger).collect().first else {
                throw StoreCorruption(column: "snapshots", why: "no snapshot of canvas \(canvas) at or below revision \(rev)")
            }
            let (snapshotRev, document) = try row.decode((Int64, Data).self)
            return (snapshotRev, try JSONValue.parse(document))
        }
    }

    public func revisions(canvas: String, after: Int64, limit: Int, maxBytes: Int) async throws -> [Revision] {
        let logger = self.logger
        return try await read { connection in
            try await Self.revisions(canvas: canvas, after: after, limit: limit, maxBytes: maxBytes, connection, logger: logger)
        }
    }

    static func revisions(canvas: String, after: Int64, limit: Int, maxBytes: Int = EventPage.defaultMaxBytes,
                          _ connection: PostgresConnection, logger: Logger) async throws -> [Revision] {
        let page = PageQuery.revisions.postgres(owner: canvas, after: after, limit: limit, maxBytes: maxBytes)
        return try await connection.query(page, logger: logger).collect().map { row in
            let (rev, baseRev, commandID, actor, ts, ops, eventSeq) = try row.decode((Int64, Int64, String, String, String, Data, Int64).self)
            return Revision(rev: rev, baseRev: baseRev, commandID: commandID, actor: actor, timestamp: ts,
                            ops: try JSONValue.parse(ops), eventSeq: UInt64(eventSeq))
        }
    }
}
