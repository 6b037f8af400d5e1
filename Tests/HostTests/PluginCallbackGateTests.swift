import Dispatch
import NIOConcurrencyHelpers
@testable import NorthstarHost
import Testing

/// The gate that keeps the ABI's promises about when plugin callbacks run.
@Suite struct PluginCallbackGateTests {
    @Test("a last callback runs once, however many threads end at the same moment")
    func runLastRunsOnce() {
        for _ in 0..<200 {
            let gate = PluginCallbackGate()
            let runs = NIOLockedValueBox(0)
            DispatchQueue.concurrentPerform(iterations: 8) { _ in
                gate.runLast { runs.withLockedValue { $0 += 1 } }
            }
            #expect(runs.withLockedValue { $0 } == 1)
        }
    }

    @Test("after a last callback the gate is closed: nothing else runs")
    func runLastCloses() {
        let gate = PluginCallbackGate()
        var ran: [String] = []
        gate.run { ran.append("event") }
        gate.runLast { ran.append("end") }
        #expect(gate.run { ran.append("late event") } == false)
        gate.runLast { ran.append("second end") }
        #expect(ran == ["event", "end"])
    }

    @Test("a closed gate runs no last callback")
    func closedGateRunsNoLast() {
        let gate = PluginCallbackGate()
        gate.close()
        var ran = false
        gate.runLast { ran = true }
        #expect(!ran)
    }
}
