import Foundation

extension SQLiteStore {
    public func commit(_ command: CanvasCommand, canvas: Resource, actor: String, traceparent: String, snapshotEvery: Int64,
                       apply: @escaping @Sendable (JSONValue) throws -> JSONValue) async throws -> CommitOutcome {
        let retain = retainPerStream
        return try await onWriter { db, published in
            do {
                let id = canvas.id
                if let previous = try db.query("SELECT fingerprint, rev FROM commands WHERE canvas = ? AND command_id = ?",
                                               [.text(id), .text(command.commandID)]).first {
                    guard previous[0].text == command.fingerprint else { return .idReused }
                    let rev = try previous.integer(1, "commands.rev")
                    guard let revision = try Self.revisions(canvas: id, after: rev - 1, limit: 1, db: db).first else {
                        throw SQLiteError(code: 0, message: "command \\(command.commandID) names a missing revision")
                    }
                    return .replayed(revision)
                }
                guard let head = try db.query("SELECT head_rev, document FROM canvas_heads WHERE canvas = ?", [.text(id)]).first,
                      let headRev = head[0].integer else {
                    throw SQLiteError(code: 0, message: "no canvas head for \\(id)")
                }
                if command.baseRev < headRev { return .conflict(headRev: headRev) }
                if command.baseRev > headRev { return .ahead(headRev: headRev) }
                let document = try apply(try JSONValue.parse(Data(try head.blob(1, "canvas_heads.document"))))
                let rev = headRev + 1
                let timestamp = EventDraft.format(Date())
                let draft = command.committedEvent(on: canvas, rev: rev, actor: actor, traceparent: traceparent)
                let event = try Self.insertEvent(draft, retain: retain, db: db)
                let encoded = Array(document.encoded())
                try db.query("UPDATE canvas_heads SET head_rev = ?, document = ? WHERE canvas = ?",
                             [.integer(rev), .blob(encoded), .text(id)])
                try db.query("UPDATE resources SET head_rev = ? WHERE id = ?", [.integer(rev), .text(id)])
                try db.query("INSERT INTO revisions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [
                    .text(id), .integer(rev), .integer(command.baseRev), .text(command.commandID), .text(actor),
                    .text(timestamp), .blob(Array(command.ops.encoded())), .integer(Int64(event.seq)),
                ])
                if snapshotEvery > 0, rev % snapshotEvery == 0 {
                    try db.query("INSERT INTO snapshots VALUES (?, ?, ?)", [.text(id), .integer(rev), .blob(encoded)])
                }
                try db.query("INSERT INTO commands VALUES (?, ?, ?, ?)",
                             [.text(id), .text(command.commandID), .text(command.fingerprint), .integer(rev)])
                let revision = Revision(rev: rev, baseRev: command.baseRev, commandID: command.commandID, actor: actor,
                                        timestamp: timestamp, ops: command.ops, eventSeq: event.seq)
                published.append(event)
                return .committed(revision, event)
            }
        }
    }

    public func head(canvas: String) async throws -> (rev: Int64, document: JSONValue) {
        try await onReader { db in
            guard let row = try db.query("SELECT head_rev, document FROM canvas_heads WHERE canvas = ?", [.text(canvas)]).first else {
                throw SQLiteError(code: 0, message: "no canvas head for \\(canvas)")
            }
            return (try row.integer(0, "canvas_heads.head_rev"), try JSONValue.parse(Data(try row.blob(1, "canvas_heads.document"))))
        }
    }

    public func snapshot(canvas: String, atOrBelow rev: Int64) async throws -> (rev: Int64, document: JSONValue) {
        try await onReader { db in
            guard let snapshot = try db.query("""
                SELECT rev, document FROM snapshots WHERE canvas = ? AND rev <= ? ORDER BY rev DESC LIMIT 1
                """, [.text(canvas), .integer(rev)]).first, let snapshotRev = snapshot[0].integer else {
                throw StoreCorruption(column: "snapshots", why: "no snapshot of canvas \(canvas) at or below revision \(rev)")
            }
            return (snapshotRev, try JSONValue.parse(Data(try snapshot.blob(1, "snapshots.document"))))
        }
    }

    public func revisions(canvas: String, after: Int64, limit: Int, maxBytes: Int) async throws -> [Revision] {
        try await onReader { db in try Self.revisions(canvas: canvas, after: after, limit: limit, maxBytes: maxBytes, db: db) }
    }

    static func revisions(canvas: String, after: Int64, limit: Int, maxBytes: Int = EventPage.defaultMaxBytes,
                          db: SQLiteConnection) throws -> [Revision] {
        try PageQuery.revisions.sqlite(owner: canvas, after: after, limit: limit, maxBytes: maxBytes, db: db).map { row in
            Revision(rev: try row.integer(0, "revisions.rev"), baseRev: try row.integer(1, "revisions.base_rev"),
                     commandID: try row.text(2, "revisions.command_id"), actor: try row.text(3, "revisions.actor"),
                     timestamp: try row.text(4, "revisions.ts"), ops: try JSONValue.parse(Data(try row.blob(5, "revisions.ops"))),
                     eventSeq: UInt64(try row.integer(6, "revisions.event_seq")))
        }
    }
}
