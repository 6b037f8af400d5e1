import NIOConcurrencyHelpers

/// A clock that moves only when told: a test advances it to the next
/// deadline anyone sleeps until, and checks what happened at that instant.
final class ManualClock: Clock, @unchecked Sendable {
    struct Instant: InstantProtocol {
        var offset: Duration
        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    private struct Sleeper {
        let deadline: Instant
        let continuation: CheckedContinuation<Void, Never>
    }

    private let state = NIOLockedValueBox((now: Instant(offset: .zero), sleepers: [Sleeper]()))

    var now: Instant { state.withLockedValue { $0.now } }
    var minimumResolution: Duration { .zero }

    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        await withCheckedContinuation { continuation in
            let due = state.withLockedValue { state -> Bool in
                if deadline <= state.now { return true }
                state.sleepers.append(Sleeper(deadline: deadline, continuation: continuation))
                return false
            }
            if due { continuation.resume() }
        }
    }

    /// The earliest deadline someone sleeps until, if anyone does.
    var nextDeadline: Instant? { state.withLockedValue { $0.sleepers.map(\.deadline).min() } }

    /// Moves to `instant` and wakes everyone due by then.
    func advance(to instant: Instant) {
        let woken = state.withLockedValue { state -> [Sleeper] in
            state.now = max(state.now, instant)
            let now = state.now
            let due = state.sleepers.filter { $0.deadline <= now }
            state.sleepers.removeAll { $0.deadline <= now }
            return due
        }
        for sleeper in woken { sleeper.continuation.resume() }
    }
}
