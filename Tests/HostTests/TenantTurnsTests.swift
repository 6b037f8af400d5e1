import NIOConcurrencyHelpers
import Testing
@testable import NorthstarHost

/// Turns to read the PostgreSQL store (`TenantTurns`).
@Suite struct TenantTurnsTests {
    /// Shut until opened; whoever waits at it polls.
    private final class Gate: Sendable {
        private let opened = NIOLockedValueBox(false)
        func open() { opened.withLockedValue { $0 = true } }
        func pass() async { while !opened.withLockedValue({ $0 }) { try? await Task.sleep(for: .milliseconds(1)) } }
    }

    /// Waits (a bounded while) until `condition` holds.
    private func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<2000 where !condition() { try await Task.sleep(for: .milliseconds(5)) }
        #expect(condition())
    }

    @Test("another tenant's read waits for one read per tenant with reads waiting, not for a burst queued ahead of it")
    func turnsAreTaken() async throws {
        let turns = TenantTurns(reads: 1)
        let ran = Ran()
        let (release, holding) = (Gate(), NIOLockedValueBox(false))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await turns.withTurn(of: "t_storm") {
                    holding.withLockedValue { $0 = true }
                    await release.pass()  // holds the only turn until released
                    ran.add("storm 0")
                }
            }
            try await eventually { holding.withLockedValue { $0 } }
            for n in 1...20 {
                group.addTask { try await turns.withTurn(of: "t_storm") { ran.add("storm \(n)") } }
                try await eventually { turns.waiting == n }  // queued in this order
            }
            group.addTask { try await turns.withTurn(of: "t_quiet") { ran.add("quiet") } }
            try await eventually { turns.waiting == 21 }
            release.open()
            try await group.waitForAll()
        }
        let all = ran.all
        #expect(Array(all.prefix(3)) == ["storm 0", "storm 1", "quiet"])
        #expect(all.filter { $0.hasPrefix("storm") } == (0...20).map { "storm \($0)" })
    }

    @Test("no more reads run at once than the turns, every read runs once, and the turns all come back")
    func turnsBoundTheReadsAtOnce() async throws {
        let turns = TenantTurns(reads: 3)
        let running = NIOLockedValueBox((now: 0, most: 0, done: 0))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 0..<300 {
                group.addTask {
                    try await turns.withTurn(of: ["t_a", "t_b", "t_c", ""][n % 4]) {
                        running.withLockedValue { $0.now += 1; $0.most = max($0.most, $0.now) }
                        await Task.yield()
                        running.withLockedValue { $0.now -= 1; $0.done += 1 }
                    }
                }
            }
            try await group.waitForAll()
        }
        let seen = running.withLockedValue { $0 }
        #expect(seen.done == 300 && seen.most <= 3 && seen.now == 0)
        #expect(turns.waiting == 0)
        // Three turns are free again: three reads hold them at once, and a fourth waits.
        let release = Gate()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask { try await turns.withTurn(of: "t_a") { await release.pass() } }
            }
            for _ in 0..<2000 where turns.waiting != 1 { try? await Task.sleep(for: .milliseconds(5)) }
            #expect(turns.waiting == 1)
            release.open()
            try await group.waitForAll()
        }
    }

    @Test("a read that throws gives its turn back")
    func aThrowingReadGivesItsTurnBack() async throws {
        struct Failed: Error {}
        let turns = TenantTurns(reads: 1)
        for _ in 0..<3 {
            await #expect(throws: Failed.self) { try await turns.withTurn(of: "t_a") { throw Failed() } }
        }
        #expect(try await turns.withTurn(of: "t_b") { 42 } == 42)
    }

    @Test("a read cancelled while it waits leaves its line at once, and takes no turn")
    func aCancelledWaiterLeaves() async throws {
        let turns = TenantTurns(reads: 1)
        let (release, holding) = (Gate(), NIOLockedValueBox(false))
        let holder = Task {
            try await turns.withTurn(of: "t_a") {
                holding.withLockedValue { $0 = true }
                await release.pass()
            }
        }
        try await eventually { holding.withLockedValue { $0 } }
        let ran = Ran()
        let waiters = (0..<3).map { n in
            Task { try await turns.withTurn(of: n == 1 ? "t_b" : "t_a") { ran.add("waiter \(n)") } }
        }
        try await eventually { turns.waiting == 3 }
        waiters[1].cancel()  // the only read of t_b: its line goes too
        try await eventually { turns.waiting == 2 }
        try #require(turns.waiting == 2)  // else it would wait for a turn that comes only after the release below
        await #expect(throws: CancellationError.self) { try await waiters[1].value }
        release.open()
        try await holder.value
        try await waiters[0].value
        try await waiters[2].value
        #expect(ran.all == ["waiter 0", "waiter 2"] && turns.waiting == 0)
        // The one turn is free again, and a task cancelled before it asks takes none.
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await turns.withTurn(of: "t_c") { "ran" }
        }
        #expect(try await early.value == "ran")  // a free turn is taken without waiting: the body sees the cancellation
        #expect(try await turns.withTurn(of: "t_c") { 42 } == 42)
    }
}
