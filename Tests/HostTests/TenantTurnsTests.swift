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
                await turns.withTurn(of: "t_storm") {
                    holding.withLockedValue { $0 = true }
                    await release.pass()  // holds the only turn until released
                    ran.add("storm 0")
                }
            }
            try await eventually { holding.withLockedValue { $0 } }
            for n in 1...20 {
                group.addTask { await turns.withTurn(of: "t_storm") { ran.add("storm \(n)") } }
                try await eventually { turns.waiting == n }  // queued in this order
            }
            group.addTask { await turns.withTurn(of: "t_quiet") { ran.add("quiet") } }
            try await eventually { turns.waiting == 21 }
            release.open()
            try await group.waitForAll()
        }
        let all = ran.all
        #expect(Array(all.prefix(3)) == ["storm 0", "storm 1", "quiet"])
        #expect(all.filter { $0.hasPrefix("storm") } == (0...20).map { "storm \($0)" })
    }

    @Test("no more reads run at once than the turns, every read runs once, and the turns all come back")
    func turnsBoundTheReadsAtOnce() async {
        let turns = TenantTurns(reads: 3)
        let running = NIOLockedValueBox((now: 0, most: 0, done: 0))
        await withTaskGroup(of: Void.self) { group in
            for n in 0..<300 {
                group.addTask {
                    await turns.withTurn(of: ["t_a", "t_b", "t_c", ""][n % 4]) {
                        running.withLockedValue { $0.now += 1; $0.most = max($0.most, $0.now) }
                        await Task.yield()
                        running.withLockedValue { $0.now -= 1; $0.done += 1 }
                    }
                }
            }
        }
        let seen = running.withLockedValue { $0 }
        #expect(seen.done == 300 && seen.most <= 3 && seen.now == 0)
        #expect(turns.waiting == 0)
        // Three turns are free again: three reads hold them at once, and a fourth waits.
        let release = Gate()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask { await turns.withTurn(of: "t_a") { await release.pass() } }
            }
            for _ in 0..<2000 where turns.waiting != 1 { try? await Task.sleep(for: .milliseconds(5)) }
            #expect(turns.waiting == 1)
            release.open()
        }
    }

    @Test("a read that throws gives its turn back")
    func aThrowingReadGivesItsTurnBack() async {
        struct Failed: Error {}
        let turns = TenantTurns(reads: 1)
        for _ in 0..<3 {
            await #expect(throws: Failed.self) { try await turns.withTurn(of: "t_a") { throw Failed() } }
        }
        #expect(await turns.withTurn(of: "t_b") { 42 } == 42)
    }
}
