import Foundation
@testable import NorthstarHost
import Testing

/// Pages of the log are bounded by bytes as well as by count: a page holds
/// events while those before it hold less than the budget, always at least
/// one, and a reader that continues from its last seq gets everything once.
@Suite struct PageBytesTests {
    /// A thread of `count` messages whose texts grow by 500 bytes each, and
    /// the stored size of every event, by seq.
    private func thread(_ fixture: StoreFixture, count: Int) async throws -> (stream: StreamName, sizes: [UInt64: Int]) {
        let context = StoreFixture.context()
        let kernel = fixture.kernel
        let thread = try await kernel.threads.create(try CreateResourceRequest(json: .object([:])), context: context)
        for index in 1...count {
            _ = try await kernel.threads.post(try fixture.message(String(repeating: "m", count: index * 500)),
                                              threadID: thread.id, context: context)
        }
        let all = try await fixture.store.events(stream: thread.stream, after: 0, limit: 1000, maxBytes: .max)
        #expect(all.events.map(\.seq) == Array(1...UInt64(count)))
        return (thread.stream, Dictionary(uniqueKeysWithValues: all.events.map { ($0.seq, $0.json.count) }))
    }

    @Test("rows fit a page while those before them hold less than the budget, and the first always does")
    func fittingCountsRowsByTheBytesBeforeThem() {
        #expect(PageQuery.fitting([], maxBytes: 10) == 0)
        #expect(PageQuery.fitting([50], maxBytes: 10) == 1)
        #expect(PageQuery.fitting([4, 5, 1, 7], maxBytes: 10) == 3)   // the fourth would start at 10
        #expect(PageQuery.fitting([4, 5, 0, 7], maxBytes: 10) == 4)   // the fourth starts at 9
        #expect(PageQuery.fitting([10, 1], maxBytes: 10) == 1)
    }

    @Test("a page stops where the events before hold the budget, and always holds one")
    func pageStopsAtTheBudget() async throws {
        let fixture = try StoreFixture()
        let (stream, sizes) = try await thread(fixture, count: 6)
        func seqs(after: UInt64 = 0, limit: Int = 1000, _ maxBytes: Int) async throws -> [UInt64] {
            try await fixture.store.events(stream: stream, after: after, limit: limit, maxBytes: maxBytes).events.map(\.seq)
        }
        let (one, two, three) = (sizes[1]!, sizes[2]!, sizes[3]!)
        // The first event fits any budget, even one smaller than it.
        #expect(try await seqs(1) == [1])
        #expect(try await seqs(0) == [1])
        #expect(try await seqs(one) == [1])
        // The next comes in once the events before it hold less than the budget.
        #expect(try await seqs(one + 1) == [1, 2])
        #expect(try await seqs(one + two) == [1, 2])
        #expect(try await seqs(one + two + 1) == [1, 2, 3])
        #expect(try await seqs(after: 2, three) == [3])
        #expect(try await seqs(after: 2, three + 1) == [3, 4])
        // The count still bounds it, and a read past the head is empty.
        #expect(try await seqs(limit: 2, .max) == [1, 2])
        #expect(try await seqs(limit: 0, .max) == [])
        #expect(try await seqs(after: 6, .max) == [])
        // The head and the first seq are told whatever the page holds.
        let page = try await fixture.store.events(stream: stream, after: 0, limit: 1000, maxBytes: 1)
        #expect(page.headSeq == 6 && page.firstSeq == 1)
    }

    @Test("continuing from the last seq of each short page reads every event once, in order")
    func shortPagesLoseNothing() async throws {
        let fixture = try StoreFixture()
        let (stream, sizes) = try await thread(fixture, count: 30)
        for budget in [1, 2500, 7000, 40000] {
            var after: UInt64 = 0
            var read: [UInt64] = []
            while true {
                let page = try await fixture.store.events(stream: stream, after: after, limit: 1000, maxBytes: budget)
                guard let last = page.events.last else { break }
                // What the page holds before its last event is under the budget.
                #expect(page.events.dropLast().reduce(0) { $0 + $1.json.count } < max(budget, 1))
                read += page.events.map(\.seq)
                after = last.seq
            }
            #expect(read == Array(1...30), "budget \(budget)")
        }
        #expect(sizes.count == 30)
    }

    @Test("a subscriber catching up through pages shorter than their count gets every event once, in order")
    func catchUpAcrossShortPages() async throws {
        let fixture = try StoreFixture()
        let context = StoreFixture.context()
        let kernel = fixture.kernel
        let thread = try await kernel.threads.create(try CreateResourceRequest(json: .object([:])), context: context)
        // 60 events of about 15 KB: 0.9 MB, catch-up pages of 256 KiB, none of 256 events.
        let text = String(repeating: "c", count: 15_000)
        for _ in 0..<60 { _ = try await kernel.threads.post(try fixture.message(text), threadID: thread.id, context: context) }
        let subscription = fixture.hub.subscribe(thread.stream, after: 3, store: fixture.store)
        var seqs: [UInt64] = []
        while seqs.count < 57 {
            guard case .event(let event)? = try await subscription.next() else { Issue.record("the catch-up ended early"); break }
            seqs.append(event.seq)
        }
        #expect(seqs == Array(4...60))
        // Then live: the next event arrives once.
        _ = try await kernel.threads.post(try fixture.message("live"), threadID: thread.id, context: context)
        guard case .event(let live)? = try await subscription.next() else { Issue.record("no live event"); return }
        #expect(live.seq == 61)
        subscription.cancel()
    }

    @Test("revisions are paged by their operations' bytes, and a past revision rebuilds across pages")
    func revisionsAndPastDocuments() async throws {
        let fixture = try StoreFixture()
        let limits = CommandLimits(maxDocumentBytes: 1 << 20, maxOperations: 10, maxPathDepth: 8, snapshotEvery: 64)
        let kernel = Kernel(store: fixture.store, hub: fixture.hub, auth: AuthChain(providers: [], env: "dev", anonymous: nil),
                            commandLimits: limits)
        let context = StoreFixture.context()
        let canvas = try await kernel.canvases.create(try CreateResourceRequest(json: .object([:])), context: context)
        // Ten commands of 300 KB each: 3 MB of operations after the snapshot of revision 0.
        let letters = Array("abcdefghij")
        for (index, letter) in letters.enumerated() {
            let ops = JSONValue.array([.object(["op": .string("add"), "path": .string("/v"),
                                                "value": .string(String(repeating: letter, count: 300_000))]),
                                       .object(["op": .string("add"), "path": .string("/n"), "value": .number(Double(index + 1))])])
            let command = try CanvasCommand(json: .object(["command_id": .string("c\(index)"), "base_rev": .number(Double(index)), "ops": ops]),
                                            limits: limits)
            _ = try await kernel.canvases.commit(command, canvasID: canvas.id, context: context)
        }
        // The default page holds the revisions before it under 1 MiB: four of them.
        let page = try await fixture.store.revisions(canvas: canvas.id, after: 0, limit: 1000)
        #expect(page.map(\.rev) == [1, 2, 3, 4])
        #expect(try await fixture.store.revisions(canvas: canvas.id, after: 8, limit: 1000).map(\.rev) == [9, 10])
        #expect(try await fixture.store.revisions(canvas: canvas.id, after: 0, limit: 1000, maxBytes: 1).map(\.rev) == [1])
        // Every past revision reads back whole, however many pages it takes.
        for rev in [1, 4, 5, 9] as [Int64] {
            let state = try await kernel.canvases.document(canvasID: canvas.id, rev: rev, context: context)
            let letter = letters[Int(rev) - 1]
            #expect(state.document == .object(["v": .string(String(repeating: letter, count: 300_000)), "n": .number(Double(rev))]))
        }
    }
}
