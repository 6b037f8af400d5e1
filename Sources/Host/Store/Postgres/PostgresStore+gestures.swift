import Foundation
import PostgresNIO

extension PostgresStore {
    public func createGesture(_ gesture: Gesture, announce: EventDraft) async throws -> StreamEvent {
        let retain = retainPerStream
        let logger = self.logger
        return try await write { connection, appended in
            try await connection.query("""
                INSERT INTO northstar.gestures VALUES (\(gesture.id), \(gesture.canvasID), \(gesture.createdAtMs), \(try Self.encode(gesture)))
                """, logger: logger)
            // A gesture's samples are never pruned by retention: a replay needs them all.
            try await connection.query("INSERT INTO northstar.streams VALUES (\(gesture.stream.rawValue), 0, 1)", logger: logger)
            let head = try await Self.lockStream(announce.stream.rawValue, connection, logger: logger)
            return try await Self.insertEvent(announce, head: head, retain: retain, connection, appended, logger: logger)
        }
    }

    public func gesture(id: String) async throws -> Gesture? {
        let logger = self.logger
        return try await read { connection in
            try await connection.query("SELECT state FROM northstar.gestures WHERE id = \(id)", logger: logger)
                .collect().first.map { try Self.decode(try $0.decode(Data.self)) }
        }
    }

    public func gestures(canvas: String, after: Gesture?, limit: Int) async throws -> [Gesture] {
        let logger = self.logger
        let (afterMs, afterID) = (after?.createdAtMs ?? .min, after?.id ?? "")
        return try await read { connection in
            // The sizes first, then the states that fit the page's bytes (a gesture's state
            // holds a line per pointer, up to limits.max_gesture_pointers).
            let keys = try await connection.query("""
                SELECT created_ms, id, octet_length(state) FROM northstar.gestures
                WHERE canvas = \(canvas) AND (created_ms, id) > (\(afterMs), \(afterID)) ORDER BY created_ms, id LIMIT \(Int64(limit))
                """, logger: logger).collect().map { try $0.decode((Int64, String, Int32).self) }
            let count = PageQuery.fitting(keys.map { Int($0.2) }, maxBytes: EventPage.defaultMaxBytes)
            guard count > 0 else { return [] }
            let (lastMs, lastID, _) = keys[count - 1]
            return try await connection.query("""
                SELECT state FROM northstar.gestures WHERE canvas = \(canvas) AND (created_ms, id) > (\(afterMs), \(afterID))
                AND (created_ms, id) <= (\(lastMs), \(lastID)) ORDER BY created_ms, id
                """, logger: logger).collect().map { try Self.decode(try $0.decode(Data.self)) }
        }
    }

    public func updateGesture(id: String, _ change: @escaping @Sendable (inout Gesture) throws -> [EventDraft]) async throws -> (Gesture, [StreamEvent]) {
        let retain = retainPerStream
        let logger = self.logger
        return try await write { connection, appended in
            // The row's lock: samples sent through two nodes at once are applied one after the other.
            guard let row = try await connection.query("SELECT state FROM northstar.gestures WHERE id = \(id) FOR UPDATE", logger: logger)
                .collect().first else {
                throw KernelError.notFound("gesture")
            }
            var gesture = try Self.decode(try row.decode(Data.self))
            let drafts = try change(&gesture)
            try await connection.query("UPDATE northstar.gestures SET state = \(try Self.encode(gesture)) WHERE id = \(id)", logger: logger)
            var events: [StreamEvent] = []
            // The gesture's own stream keeps everything; the canvas stream follows retention.
            for draft in drafts {
                let head = try await Self.lockStream(draft.stream.rawValue, connection, logger: logger)
                events.append(try await Self.insertEvent(draft, head: head, retain: draft.stream == gesture.stream ? 0 : retain,
                                                         connection, appended, logger: logger))
            }
            return (gesture, events)
        }
    }

    private static func encode(_ gesture: Gesture) throws -> Data { try JSONEncoder().encode(gesture) }
    private static func decode(_ data: Data) throws -> Gesture { try JSONDecoder().decode(Gesture.self, from: data) }
}
