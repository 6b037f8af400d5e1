import Foundation
@testable import NorthstarHost
import Testing

/// A store that stops taking writes says why (503 with a stable code),
/// serves reads meanwhile, and reports itself healthy once writes work.
@Suite struct StoreHealthTests {
    @Test("a read-only database answers 503 store_read_only, keeps serving reads, and recovers")
    func readOnlyStore() async throws {
        let fixture = try StoreFixture()
        let kernel = fixture.kernel
        let context = StoreFixture.context()
        let thread = try await kernel.threads.create(try CreateResourceRequest(json: .object([:])), context: context)
        _ = try await kernel.threads.post(try fixture.message("before"), threadID: thread.id, context: context)

        // SQLite's own read-only mode: every write now fails with SQLITE_READONLY.
        try await fixture.store.onWriter { db, _ in try db.execute("PRAGMA query_only = ON") }
        do {
            _ = try await kernel.threads.post(try fixture.message("refused"), threadID: thread.id, context: context)
            Issue.record("a write to a read-only store succeeded")
        } catch let error as KernelError {
            #expect(error.kind == .unavailable && error.code == "store_read_only")
        }
        #expect(fixture.store.health.current == .readOnly)
        let page = try await fixture.store.events(stream: thread.stream, after: 0, limit: 10)
        #expect(page.events.count == 1 && page.headSeq == 1)

        // Nothing is in flight: switch the writer back directly (a batch would start with BEGIN, which query_only refuses).
        try fixture.store.writer.execute("PRAGMA query_only = OFF")
        try await fixture.store.probeWrite()
        #expect(fixture.store.health.current == nil)
        let (event, _) = try await kernel.threads.post(try fixture.message("after"), threadID: thread.id, context: context)
        #expect(event.seq == 2)
    }

    @Test("SQLite's failures are told apart: full, read-only, failing, or not a store problem at all")
    func classification() {
        #expect(StoreHealth.problem(of: SQLiteError(code: 13, message: "database or disk is full")) == .full)
        #expect(StoreHealth.problem(of: SQLiteError(code: 8, message: "attempt to write a readonly database")) == .readOnly)
        #expect(StoreHealth.problem(of: SQLiteError(code: 10 | (4 << 8), message: "disk I/O error", systemErrno: ENOSPC)) == .full)
        #expect(StoreHealth.problem(of: SQLiteError(code: 10, message: "disk I/O error", systemErrno: EROFS)) == .readOnly)
        #expect(StoreHealth.problem(of: SQLiteError(code: 10, message: "disk I/O error", systemErrno: EIO)) == .failing)
        #expect(StoreHealth.problem(of: SQLiteError(code: 19, message: "UNIQUE constraint failed")) == nil)
    }
}
