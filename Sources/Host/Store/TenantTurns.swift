import NIOConcurrencyHelpers

/// Turns to read the PostgreSQL store: a few reads at a time, the next turn
/// going to the next tenant in line (`TenantLines`).
///
/// The reads share the connection pool with the writes. The reads past
/// the turns wait here, in their tenants' lines, so a write waits in the
/// pool's queue for at most the reads that hold turns, never for a whole
/// burst of catch-ups. Too few turns cost the median: with three quarters
/// of the pool (to keep the rest for writes), a burst held every turn most
/// of the time and another tenant's median read waited 4x longer; with
/// one per connection, up to 4x too, as a turn outlives its connection a
/// little (`PostgresStore` takes twice the pool; `reader_fairness.py`).
///
/// A read whose task is cancelled while it waits leaves its line at once
/// (`CancellationError`): a client that subscribes and leaves, again and
/// again, does not queue reads nobody will use.
///
/// THREAD: any.
final class TenantTurns: Sendable {
    private struct Waiter {
        let id: UInt64
        /// Resumed with true when the turn is the waiter's, false when it left.
        let turn: CheckedContinuation<Bool, Never>
    }

    private struct State {
        /// Turns free now; no read waits while one is.
        var free: Int
        var lines = TenantLines<Waiter>()
        var lastID: UInt64 = 0

        /// Takes a free turn, if there is one.
        mutating func takeFree() -> Bool {
            guard free > 0 else { return false }
            free -= 1
            return true
        }
    }

    private let state: NIOLockedValueBox<State>

    /// - Parameter reads: how many reads run at once (at least one).
    init(reads: Int) {
        state = NIOLockedValueBox(State(free: max(1, reads)))
    }

    /// Reads waiting for a turn now.
    var waiting: Int { state.withLockedValue { $0.lines.count } }

    /// Runs `body` in the tenant's turn ("" for the node's own reads).
    /// - Throws: `CancellationError` when the task is cancelled before its
    ///   turn; what `body` throws.
    func withTurn<T>(of tenant: String, _ body: () async throws -> T) async throws -> T {
        guard await take(tenant) else { throw CancellationError() }
        defer { giveBack() }
        return try await body()
    }

    /// True once the turn is the caller's; false when its task was cancelled first.
    private func take(_ tenant: String) async -> Bool {
        let id = state.withLockedValue { state -> UInt64? in
            if state.takeFree() { return nil }
            state.lastID += 1
            return state.lastID
        }
        guard let id else { return true }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (turn: CheckedContinuation<Bool, Never>) in
                let now = state.withLockedValue { state -> Bool? in
                    // Cancelled before this point: the handler below found no waiter to take out.
                    if Task.isCancelled { return false }
                    // A turn given back since the first look is taken at once.
                    if state.takeFree() { return true }
                    state.lines.append(Waiter(id: id, turn: turn), for: tenant)
                    return nil
                }
                if let now { turn.resume(returning: now) }
            }
        } onCancel: {
            state.withLockedValue { $0.lines.remove(from: tenant) { $0.id == id } }?.turn.resume(returning: false)
        }
    }

    /// Hands the turn to the next read in line, or frees it.
    private func giveBack() {
        let next = state.withLockedValue { state -> Waiter? in
            guard let waiter = state.lines.next() else {
                state.free += 1
                return nil
            }
            return waiter
        }
        next?.turn.resume(returning: true)
    }
}
