import Foundation
@testable import NorthstarHost
import Testing

/// The durable log: gapless seq under concurrency, idempotency, retention, durability.
@Suite struct EventLogTests {
    @Test("concurrent appends to one stream get seq 1...N with no gap or duplicate")
    func concurrentAppendsAreGapless() async throws {
        let fixture = try StoreFixture()
        let kernel = fixture.kernel
        let context = StoreFixture.context()
        let thread = try await kernel.threads.create(try CreateResourceRequest(json: .object([:])), context: context)
        let seqs = try await withThrowingTaskGroup(of: UInt64.self) { group in
            for index in 0..<200 {
                group.addTask { try await kernel.threads.post(try fixture.message("m\(index)"), threadID: thread.id, context: context).0.seq }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(seqs.sorted() == Array(1...200))
        let page = try await fixture.store.events(stream: thread.stream, after: 0, limit: 1000)
        #expect(page.events.map(\.seq) == Array(1...200))
        #expect(Set(page.events.map(\.id)).count == 200)
    }

    @Test("a retried client_message_id returns the first event; another body under it is refused")
    func idempotentPosts() async throws {
        let fixture = try StoreFixture()
        let kernel = fixture.kernel
        let context = StoreFixture.context()
        let thread = try await kernel.threads.create(try CreateResourceRequest(json: .object([:])), context: context)
        let (first, firstReplayed) = try await kernel.threads.post(try fixture.message("hi", id: "m-1"), threadID: thread.id, context: context)
        let (again, replayed) = try await kernel.threads.post(try fixture.message("hi", id: "m-1"), threadID: thread.id, context: context)
        #expect(!firstReplayed && replayed)
        #expect(first == again)
        await #expect(throws: KernelError.self) {
            try await kernel.threads.post(try fixture.message("changed", id: "m-1"), threadID: thread.id, context: context)
        }
        #expect(try await fixture.store.events(stream: thread.stream, after: 0, limit: 10).headSeq == 1)
    }

    @Test("events survive closing and reopening the database")
    func durableAcrossReopen() async throws {
        let fixture = try StoreFixture()
        let kernel = fixture.kernel
        let context = StoreFixture.context()
        let thread = try await kernel.threads.create(try CreateResourceRequest(json: .object([:])), context: context)
        for index in 0..<20 { _ = try await kernel.threads.post(try fixture.message("m\(index)"), threadID: thread.id, context: context) }
        let reopened = try fixture.reopen()
        let page = try await reopened.events(stream: thread.stream, after: 0, limit: 100)
        #expect(page.events.count == 20)
        #expect(try await reopened.resource(id: thread.id) == thread)
    }

    @Test("retention prunes old events, and reading below what is kept is refused with where to resume")
    func retention() async throws {
        let fixture = try StoreFixture(retain: 5)
        let kernel = fixture.kernel
        let context = StoreFixture.context()
        let thread = try await kernel.threads.create(try CreateResourceRequest(json: .object([:])), context: context)
        for index in 0..<12 { _ = try await kernel.threads.post(try fixture.message("m\(index)"), threadID: thread.id, context: context) }
        let page = try await kernel.streams.events(.thread, id: thread.id, after: 7, limit: 100, context: context)
        #expect(page.firstSeq == 8 && page.headSeq == 12)
        #expect(page.events.map(\.seq) == [8, 9, 10, 11, 12])
        do {
            _ = try await kernel.streams.events(.thread, id: thread.id, after: 2, limit: 100, context: context)
            Issue.record("a read below the kept events succeeded")
        } catch let error as KernelError {
            #expect(error.code == "events_expired")
            #expect(error.details["first_seq"] == .number(8))
        }
    }

    @Test("events are StreamEvent v1 with structured data")
    func eventShape() async throws {
        let fixture = try StoreFixture()
        let kernel = fixture.kernel
        let context = StoreFixture.context()
        let thread = try await kernel.threads.create(try CreateResourceRequest(json: .object([:])), context: context)
        let (event, _) = try await kernel.threads.post(try PostMessageRequest(json: try JSONValue.parse(#"{"text":"hi","data":{"k":[1]}}"#)),
                                                       threadID: thread.id, context: context)
        let json = try #require(try JSONValue.parse(event.json).objectValue)
        #expect(Set(json.keys) == ["v", "id", "stream", "seq", "type", "ts", "actor", "trace", "data"])
        #expect(json["v"] == .number(1) && json["type"] == .string("chat.message") && json["seq"] == .number(1))
        #expect(json["data"]?.objectValue?["data"] == .object(["k": .array([.number(1)])]))
        #expect(json["trace"]?.stringValue?.hasPrefix("00-") == true)
    }
}
