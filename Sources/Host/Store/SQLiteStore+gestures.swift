import Foundation

extension SQLiteStore {
    public func createGesture(_ gesture: Gesture, announce: EventDraft) async throws -> StreamEvent {
        let retain = retainPerStream
        return try await onWriter { db, published in
            try db.query("INSERT INTO gestures VALUES (?, ?, ?, ?)",
                         [.text(gesture.id), .text(gesture.canvasID), .integer(gesture.createdAtMs), .blob(try Self.encode(gesture))])
            // A gesture's samples are never pruned by retention: a replay needs them all.
            try db.query("INSERT INTO streams VALUES (?, 0, 1)", [.text(gesture.stream.rawValue)])
            let event = try Self.insertEvent(announce, retain: retain, db: db)
            published.append(event)
            return event
        }
    }

    public func gesture(id: String) async throws -> Gesture? {
        try await onReader { db in
            try db.query("SELECT state FROM gestures WHERE id = ?", [.text(id)]).first.map { try Self.decode(try $0.blob(0, "gestures.state")) }
        }
    }

    public func gestures(canvas: String, after: Gesture?, limit: Int) async throws -> [Gesture] {
        try await onReader { db in
            // One read transaction: the sizes first, then the states that fit the page's bytes
            // (a gesture's state holds a line per pointer, up to limits.max_gesture_pointers).
            try db.execute("BEGIN")
            defer { try? db.execute("COMMIT") }
            let from: [SQLValue] = [.text(canvas), .integer(after?.createdAtMs ?? .min), .text(after?.id ?? "")]
            let keys = try db.query("""
                SELECT created_ms, id, length(state) FROM gestures WHERE canvas = ?1 AND (created_ms, id) > (?2, ?3)
                ORDER BY created_ms, id LIMIT ?4
                """, from + [.integer(Int64(limit))])
            let count = PageQuery.fitting(try keys.map { Int(try $0.integer(2, "gestures.state")) }, maxBytes: EventPage.defaultMaxBytes)
            guard count > 0 else { return [] }
            let last = keys[count - 1]
            return try db.query("""
                SELECT state FROM gestures WHERE canvas = ?1 AND (created_ms, id) > (?2, ?3) AND (created_ms, id) <= (?4, ?5)
                ORDER BY created_ms, id
                """, from + [last[0], last[1]]).map { try Self.decode(try $0.blob(0, "gestures.state")) }
        }
    }

    public func updateGesture(id: String, _ change: @escaping @Sendable (inout Gesture) throws -> [EventDraft]) async throws -> (Gesture, [StreamEvent]) {
        let retain = retainPerStream
        return try await onWriter { db, published in
            guard let row = try db.query("SELECT state FROM gestures WHERE id = ?", [.text(id)]).first else {
                throw KernelError.notFound("gesture")
            }
            var gesture = try Self.decode(try row.blob(0, "gestures.state"))
            let drafts = try change(&gesture)
            try db.query("UPDATE gestures SET state = ? WHERE id = ?", [.blob(try Self.encode(gesture)), .text(id)])
            // The gesture's own stream keeps everything; the canvas stream follows retention.
            let events = try drafts.map { draft in
                try Self.insertEvent(draft, retain: draft.stream == gesture.stream ? 0 : retain, db: db)
            }
            published.append(contentsOf: events)
            return (gesture, events)
        }
    }

    private static func encode(_ gesture: Gesture) throws -> [UInt8] { Array(try JSONEncoder().encode(gesture)) }
    private static func decode(_ bytes: [UInt8]) throws -> Gesture { try JSONDecoder().decode(Gesture.self, from: Data(bytes)) }
}
