import Foundation
@testable import NorthstarHost
import Testing

/// Catch-up then live, with appends racing the subscription: every event once, in order.
@Suite struct StreamHubTests {
    private func setUp(retain: Int64 = 0) async throws -> (StoreFixture, Kernel, RequestContext, Resource) {
        let fixture = try StoreFixture(retain: retain)
        let kernel = fixture.kernel
        let context = StoreFixture.context()
        let thread = try await kernel.threads.create(try CreateResourceRequest(json: .object([:])), context: context)
        return (fixture, kernel, context, thread)
    }

    private func post(_ count: Int, _ prefix: String, kernel: Kernel, fixture: StoreFixture, thread: Resource,
                      context: RequestContext) async throws {
        for index in 0..<count {
            _ = try await kernel.threads.post(try fixture.message("\(prefix)\(index)"), threadID: thread.id, context: context)
        }
    }

    @Test("a subscriber that joins mid-burst gets every event once, in order, across the seam")
    func seamHasNoGapOrDuplicate() async throws {
        let (fixture, kernel, context, thread) = try await setUp()
        try await post(300, "before", kernel: kernel, fixture: fixture, thread: thread, context: context)
        // Appends keep running while the subscriber catches up, then goes live.
        let writer = Task { try await post(300, "during", kernel: kernel, fixture: fixture, thread: thread, context: context) }
        let subscription = fixture.hub.subscribe(thread.stream, after: 10, store: fixture.store)
        var seqs: [UInt64] = []
        while let item = try await subscription.next() {
            guard case .event(let event) = item else { Issue.record("unexpected \(item)"); break }
            seqs.append(event.seq)
            if event.seq == 600 { break }
        }
        try await writer.value
        #expect(fixture.hub.subscriberCount(thread.stream) == 1)
        subscription.cancel()
        #expect(seqs == Array(11...600))
        #expect(fixture.hub.subscriberCount(thread.stream) == 0)
    }

    @Test("a resume below what retention kept starts with an explicit gap item")
    func gapIsExplicit() async throws {
        let (fixture, kernel, context, thread) = try await setUp(retain: 3)
        try await post(10, "m", kernel: kernel, fixture: fixture, thread: thread, context: context)
        let subscription = fixture.hub.subscribe(thread.stream, after: 2, store: fixture.store)
        var items: [SubscriptionItem] = []
        while items.count < 4, let item = try await subscription.next() { items.append(item) }
        subscription.cancel()
        #expect(items.first == .gap(requestedAfter: 2, firstSeq: 8))
        #expect(items.dropFirst().compactMap { item -> UInt64? in if case .event(let e) = item { e.seq } else { nil } } == [8, 9, 10])
    }

    @Test("a live subscriber that stops reading is cut off at the queue limit, told where to resume")
    func slowConsumerIsBounded() async throws {
        let (fixture, kernel, context, thread) = try await setUp()  // queue limit 64
        let subscription = fixture.hub.subscribe(thread.stream, after: 0, store: fixture.store)
        let first = Task { try await subscription.next() }
        while fixture.hub.subscriberCount(thread.stream) == 0 { try await Task.sleep(for: .milliseconds(5)) }
        try await post(1, "first", kernel: kernel, fixture: fixture, thread: thread, context: context)
        guard case .event(let event)? = try await first.value else { Issue.record("no first event"); return }
        #expect(event.seq == 1)
        // Now the subscriber stops reading while 100 more arrive.
        try await post(100, "m", kernel: kernel, fixture: fixture, thread: thread, context: context)
        #expect(try await subscription.next() == .overflow(lastDeliveredSeq: 1))
        #expect(try await subscription.next() == nil)
        #expect(fixture.hub.subscriberCount(thread.stream) == 0)
    }

    @Test("a subscriber far behind holds one page, not the backlog: it is not live until caught up")
    func catchUpIsPaced() async throws {
        let (fixture, kernel, context, thread) = try await setUp()
        try await post(600, "m", kernel: kernel, fixture: fixture, thread: thread, context: context)
        let subscription = fixture.hub.subscribe(thread.stream, after: 0, store: fixture.store)
        guard case .event(let first)? = try await subscription.next() else { Issue.record("no event"); return }
        #expect(first.seq == 1)
        #expect(fixture.hub.subscriberCount(thread.stream) == 0)
        subscription.cancel()
    }
}
