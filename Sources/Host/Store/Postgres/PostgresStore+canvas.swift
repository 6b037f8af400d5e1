import Foundation
import PostgresNIO

extension PostgresStore {
    public func commit(_ command: CanvasCommand, canvas: Resource, actor: String, traceparent: String, snapshotEvery: Int64,
                       apply: @escaping @Sendable (JSONValue) throws -> JSONValue) async throws -> CommitOutcome {
        let retain = retainPerStream
        let logger = self.logger
        return try await write { connection, appended in
            let id = canvas.id
            // The head's lock first: commands on one canvas from every node are linearized here.
            guard let head = try await connection.query("""
                SELECT head_rev, document FROM northstar.canvas_heads WHERE canvas = \(id) FOR UPDATE
                """, logger: logger).collect().first else {
                throw StoreCorruption(column: "canvas_heads", why: "no canvas head for \(id)")
            }
            let (headRev, stored) = try head.decode((Int64, Data).self)
            if let previous = try await connection.query("""
                SELECT fingerprint, rev FROM northstar.commands WHERE canvas = \(id) AND command_id = \(command.commandID)
                """, logger: logger).collect().first {
                let (fingerprint, rev) = try previous.decode((String, Int64).self)
                guard fingerprint == command.fingerprint else { return .idReused }
                guard let revision = try await Self.revisions(canvas: id, after: rev - 1, limit: 1, connection, logger: logger).first else {
                    throw StoreCorruption(column: "commands", why: "command \(command.commandID) names a missing revision")
                }
                return .replayed(revision)
            }
            if command.baseRev < headRev { return .conflict(headRev: headRev) }
            if command.baseRev > headRev { return .ahead(headRev: headRev) }
            let document = try apply(try JSONValue.parse(stored))
            let rev = headRev + 1
            let timestamp = EventDraft.format(Date())
            let draft = EventDraft(stream: canvas.stream, type: "canvas.committed", actor: actor, traceparent: traceparent,
                                   rev: rev, data: .object([
                                       "rev": .number(Double(rev)), "base_rev": .number(Double(command.baseRev)),
                                       "command_id": .string(command.commandID), "ops": command.ops,
                                   ]))
            let stream = try await Self.lockStream(canvas.stream.rawValue, connection, logger: logger)
            let event = try await Self.insertEvent(draft, head: stream, retain: retain, connection, appended, logger: logger)
            let encoded = document.encoded()
            // One statement for the rest: the head, the revision, the command record, and a snapshot when due.
            let snapshot = snapshotEvery > 0 && rev % snapshotEvery == 0
            try await connection.query("""
                WITH head AS (UPDATE northstar.canvas_heads SET head_rev = \(rev), document = \(encoded) WHERE canvas = \(id)),
                     resource AS (UPDATE northstar.resources SET head_rev = \(rev) WHERE id = \(id)),
                     revision AS (INSERT INTO northstar.revisions VALUES (\(id), \(rev), \(command.baseRev), \(command.commandID),
                                  \(actor), \(timestamp), \(command.ops.encoded()), \(Int64(event.seq)))),
                     command AS (INSERT INTO northstar.commands VALUES (\(id), \(command.commandID), \(command.fingerprint), \(rev)))
                INSERT INTO northstar.snapshots SELECT \(id), \(rev), \(encoded) WHERE \(snapshot)
                """, logger: logger)
            let revision = Revision(rev: rev, baseRev: command.baseRev, commandID: command.commandID, actor: actor,
                                    timestamp: timestamp, ops: command.ops, eventSeq: event.seq)
            return .committed(revision, event)
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

    public func history(canvas: String, upTo rev: Int64) async throws -> (snapshotRev: Int64, snapshot: JSONValue, ops: [JSONValue]) {
        let logger = self.logger
        return try await read { connection in
            guard let snapshot = try await connection.query("""
                SELECT rev, document FROM northstar.snapshots WHERE canvas = \(canvas) AND rev <= \(rev) ORDER BY rev DESC LIMIT 1
                """, logger: logger).collect().first else {
                throw StoreCorruption(column: "snapshots", why: "no snapshot of canvas \(canvas) at or below revision \(rev)")
            }
            let (snapshotRev, document) = try snapshot.decode((Int64, Data).self)
            let ops = try await connection.query("""
                SELECT ops FROM northstar.revisions WHERE canvas = \(canvas) AND rev > \(snapshotRev) AND rev <= \(rev) ORDER BY rev
                """, logger: logger).collect().map { try JSONValue.parse(try $0.decode(Data.self)) }
            return (snapshotRev, try JSONValue.parse(document), ops)
        }
    }

    public func revisions(canvas: String, after: Int64, limit: Int) async throws -> [Revision] {
        let logger = self.logger
        return try await read { connection in try await Self.revisions(canvas: canvas, after: after, limit: limit, connection, logger: logger) }
    }

    static func revisions(canvas: String, after: Int64, limit: Int, _ connection: PostgresConnection, logger: Logger) async throws -> [Revision] {
        try await connection.query("""
            SELECT rev, base_rev, command_id, actor, ts, ops, event_seq FROM northstar.revisions
            WHERE canvas = \(canvas) AND rev > \(after) ORDER BY rev LIMIT \(Int64(limit))
            """, logger: logger).collect().map { row in
            let (rev, baseRev, commandID, actor, ts, ops, eventSeq) = try row.decode((Int64, Int64, String, String, String, Data, Int64).self)
            return Revision(rev: rev, baseRev: baseRev, commandID: commandID, actor: actor, timestamp: ts,
                            ops: try JSONValue.parse(ops), eventSeq: UInt64(eventSeq))
        }
    }
}
