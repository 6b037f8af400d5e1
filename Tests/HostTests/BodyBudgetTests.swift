import Testing
@testable import NorthstarHost

/// The bytes of request bodies read at once, shared by every request.
@Suite struct BodyBudgetTests {
    @Test("reservations fit under the limit, one past it is refused whole, and a release makes room")
    func reserveAndRelease() {
        let budget = BodyBudget(limit: 100)
        #expect(budget.reserve(60))
        #expect(!budget.reserve(41))
        #expect(budget.inUse == 60)
        #expect(budget.reserve(40))
        #expect(!budget.reserve(1))
        budget.release(60)
        #expect(budget.reserve(60) && budget.inUse == 100)
    }

    @Test("many tasks reserving at once never hold more than the limit together")
    func concurrentReservationsStayUnderTheLimit() async {
        let budget = BodyBudget(limit: 1000)
        let granted = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<64 {
                group.addTask {
                    var held = 0
                    for _ in 0..<200 where budget.reserve(7) {
                        held += 7
                        #expect(budget.inUse <= 1000)
                    }
                    return held
                }
            }
            return await group.reduce(0, +)
        }
        #expect(granted == budget.inUse && granted <= 1000 && granted > 1000 - 7)
    }
}
