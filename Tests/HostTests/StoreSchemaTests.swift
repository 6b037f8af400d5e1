import Foundation
@testable import NorthstarHost
import Testing

/// The store's schema is versioned: an older database is migrated in place
/// with nothing lost, a newer one is refused, and a row that does not decode
/// is reported rather than defaulted.
@Suite struct StoreSchemaTests {
    /// The schema 0 layout, as the previous release created it.
    private static let schemaZero = """
        CREATE TABLE resources (id TEXT PRIMARY KEY, kind TEXT NOT NULL, tenant TEXT NOT NULL, env TEXT NOT NULL,
            created_by TEXT NOT NULL, created_at_ms INTEGER NOT NULL, title TEXT, metadata TEXT NOT NULL,
            head_rev INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE streams (stream TEXT PRIMARY KEY, head_seq INTEGER NOT NULL, first_seq INTEGER NOT NULL);
        CREATE TABLE events (stream TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL,
            json BLOB NOT NULL, PRIMARY KEY (stream, seq)) WITHOUT ROWID;
        CREATE TABLE idempotency (stream TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, seq INTEGER NOT NULL,
            event_json BLOB NOT NULL, PRIMARY KEY (stream, key)) WITHOUT ROWID;
        """

    @Test("a schema 0 database is migrated: every event kept, replays still answered with the first event")
    func migratesSchemaZero() async throws {
        let directory = try TestPaths.temporaryDirectory()
        let path = directory.appendingPathComponent("old.sqlite").path
        let context = StoreFixture.context()
        let message = try PostMessageRequest(json: .object(["text": .string("hello"), "client_message_id": .string("m-1")]))
        let fingerprint = message.fingerprint(actor: context.userID)
        do {
            let old = try SQLiteConnection(path: path)
            try old.execute(Self.schemaZero)
            try old.query("INSERT INTO resources VALUES ('th_old', 'thread', 't_alpha', 'dev', 'u', 0, NULL, '{}', 0)")
            try old.query("INSERT INTO streams VALUES ('chat:th_old', 2, 1)")
            for seq in 1...2 {
                let json = #"{"v":1,"id":"ev_\#(seq)","stream":"chat:th_old","seq":\#(seq),"type":"chat.message","data":{"text":"hello"}}"#
                try old.query("INSERT INTO events VALUES ('chat:th_old', ?, ?, 'chat.message', ?)",
                              [.integer(Int64(seq)), .text("ev_\(seq)"), .blob(Array(json.utf8))])
                if seq == 1 {
                    try old.query("INSERT INTO idempotency VALUES ('chat:th_old', 'm-1', ?, 1, ?)", [.text(fingerprint), .blob(Array(json.utf8))])
                }
            }
        }
        let store = try SQLiteStore(path: path)
        let page = try await store.events(stream: StreamName("chat:th_old"), after: 0, limit: 10)
        #expect(page.events.map(\.id) == ["ev_1", "ev_2"] && page.headSeq == 2)
        let draft = EventDraft(stream: StreamName("chat:th_old"), type: "chat.message", actor: context.userID,
                               traceparent: context.traceparent, data: .object(["text": .string("hello")]))
        #expect(try await store.append(draft, idempotencyKey: "m-1", fingerprint: fingerprint) == .replayed(page.events[0]))
        let (version, layout) = try await store.onReader { db in
            (try db.query("PRAGMA user_version").first?[0].integer,
             try db.query("SELECT sql FROM sqlite_master WHERE name = 'events'").first?[0].text ?? "")
        }
        #expect(version == SQLiteStore.schemaVersion && !layout.contains("WITHOUT ROWID"))
    }

    @Test("a database from a newer release is refused with both schema numbers")
    func refusesNewerSchema() throws {
        let directory = try TestPaths.temporaryDirectory()
        let path = directory.appendingPathComponent("new.sqlite").path
        try SQLiteConnection(path: path).execute("PRAGMA user_version = 99")
        do {
            _ = try SQLiteStore(path: path)
            Issue.record("a newer schema was opened")
        } catch let error as StoreOpenError {
            #expect(error.description.contains("schema 99") && error.description.contains("up to \(SQLiteStore.schemaVersion)"))
        }
    }

    @Test("a row that does not decode is an error naming the column, never a default")
    func corruptRowsAreReported() async throws {
        let fixture = try StoreFixture()
        let thread = try await fixture.kernel.threads.create(try CreateResourceRequest(json: .object([:])), context: StoreFixture.context())
        _ = try await fixture.store.onWriter { db, _ in
            try db.query("UPDATE resources SET metadata = 'not json' WHERE id = ?", [.text(thread.id)])
        }
        await #expect(throws: StoreCorruption.self) { _ = try await fixture.store.resource(id: thread.id) }
        _ = try await fixture.store.onWriter { db, _ in
            try db.query("UPDATE resources SET metadata = '{}', head_rev = 'x' WHERE id = ?", [.text(thread.id)])
        }
        await #expect(throws: StoreCorruption.self) { _ = try await fixture.store.resource(id: thread.id) }
    }

    @Test("a replay whose event retention has pruned is answered with the event's identity, marked pruned")
    func replayAfterPruning() async throws {
        let fixture = try StoreFixture(retain: 2)
        let kernel = fixture.kernel
        let context = StoreFixture.context()
        let thread = try await kernel.threads.create(try CreateResourceRequest(json: .object([:])), context: context)
        let (first, _) = try await kernel.threads.post(try fixture.message("one", id: "k1"), threadID: thread.id, context: context)
        for index in 0..<3 { _ = try await kernel.threads.post(try fixture.message("more \(index)"), threadID: thread.id, context: context) }
        let (again, replayed) = try await kernel.threads.post(try fixture.message("one", id: "k1"), threadID: thread.id, context: context)
        #expect(replayed && again.seq == first.seq)
        let body = try JSONValue.parse(again.json)
        #expect(body.objectValue?["pruned"] == .bool(true) && body.objectValue?["seq"] == .number(1))
    }
}
