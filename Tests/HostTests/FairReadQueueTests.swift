import Dispatch
import NIOConcurrencyHelpers
import Testing
@testable import NorthstarHost

/// The store's reads taking turns between tenants (`FairReadQueue`).
@Suite struct FairReadQueueTests {
    @Test("another tenant's read waits for one read per tenant with reads waiting, not for a burst queued ahead of it")
    func turnsAreTaken() {
        let queue = FairReadQueue(label: "test.reads")
        let ran = Ran()
        let (holding, release, done) = (DispatchSemaphore(value: 0), DispatchSemaphore(value: 0), DispatchGroup())
        done.enter()
        queue.submit(tenant: "t_storm") { holding.signal(); release.wait(); ran.add("storm 0"); done.leave() }
        holding.wait()  // the first read runs; everything below queues behind it
        for n in 1...50 {
            done.enter()
            queue.submit(tenant: "t_storm") { ran.add("storm \(n)"); done.leave() }
        }
        done.enter()
        queue.submit(tenant: "t_quiet") { ran.add("quiet"); done.leave() }
        done.enter()
        queue.submit(tenant: "") { ran.add("node"); done.leave() }
        #expect(queue.waiting == 52)  // the one running is no longer waiting
        release.signal()
        done.wait()
        #expect(queue.waiting == 0)
        #expect(Array(ran.all.prefix(4)) == ["storm 0", "storm 1", "quiet", "node"])
        #expect(ran.all.filter { $0.hasPrefix("storm") } == (0...50).map { "storm \($0)" })
    }

    @Test("reads submitted at once from many threads each run once, in order within their tenant")
    func everyReadRunsOnceInOrder() {
        let queue = FairReadQueue(label: "test.reads")
        let ran = Ran()
        let done = DispatchGroup()
        let tenants = ["t_a", "t_b", "t_c"]
        DispatchQueue.concurrentPerform(iterations: tenants.count) { index in
            for n in 0..<300 {
                done.enter()
                queue.submit(tenant: tenants[index]) { ran.add("\(tenants[index]) \(n)"); done.leave() }
            }
        }
        done.wait()
        #expect(ran.all.count == 900)
        for tenant in tenants {
            #expect(ran.all.filter { $0.hasPrefix(tenant + " ") } == (0..<300).map { "\(tenant) \($0)" })
        }
    }

    @Test("a queue that ran dry runs the next read submitted")
    func aDrainedQueueStartsAgain() {
        let queue = FairReadQueue(label: "test.reads")
        for round in 0..<100 {
            let done = DispatchSemaphore(value: 0)
            queue.submit(tenant: round.isMultiple(of: 2) ? "t_a" : "t_b") { done.signal() }
            #expect(done.wait(timeout: .now() + 5) == .success)
        }
    }

    @Test("a read is the named tenant's, else its request's tenant once authenticated, else the node's")
    func whoseReadItIs() async {
        #expect(ReadingTenant.current == "")
        let facts = RequestFacts(requestID: "r", traceparent: "t")
        await RequestFacts.$current.withValue(facts) {
            #expect(ReadingTenant.current == "")  // not yet authenticated
            facts.tenant = "t_alpha"
            #expect(ReadingTenant.current == "t_alpha")
            await ReadingTenant.$named.withValue("t_beta") { #expect(ReadingTenant.current == "t_beta") }
        }
    }

    @Test("a store read whose task is cancelled before its turn is skipped, and the reads after it run")
    func aCancelledReadIsSkipped() async throws {
        let fixture = try StoreFixture()
        let (holding, release) = (DispatchSemaphore(value: 0), DispatchSemaphore(value: 0))
        let ran = Ran()
        let first = Task { try await fixture.store.onReader { _ in holding.signal(); release.wait(); ran.add("first") } }
        holding.wait()  // the reading connection is busy until released
        let cancelled = Task { try await fixture.store.onReader { _ in ran.add("cancelled") } }
        let after = Task { try await fixture.store.onReader { _ in ran.add("after") } }
        for _ in 0..<2000 where fixture.store.readsWaiting < 2 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(fixture.store.readsWaiting == 2)
        cancelled.cancel()
        release.signal()
        try await first.value
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        try await after.value
        #expect(ran.all == ["first", "after"])
    }
}
