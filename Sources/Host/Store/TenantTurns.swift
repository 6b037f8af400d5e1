import NIOConcurrencyHelpers

/// Turns to read the PostgreSQL store: a few reads at a time, the next turn
/// going to the next tenant in line (`TenantLines`).
///
/// The reads share the connection pool with the writes. With as many turns
/// as the pool has connections, the reads past those wait here, in their
/// tenants' lines, and a write waits in the pool's queue for at most the
/// reads that hold connections, never for a whole burst of catch-ups.
/// Fewer turns than connections (three quarters of the pool, to keep the
/// rest for writes) made a burst hold every turn most of the time, and
/// another tenant's median read waited 4x longer (`reader_fairness.py`).
///
/// A task waiting for its turn is not woken by its cancellation: it reads
/// once its turn comes, and its body sees the cancellation then. Each body
/// is bounded by the store's deadline, so every turn comes back.
///
/// THREAD: any.
final class TenantTurns: Sendable {
    private struct State {
        /// Turns free now; no read waits while one is.
        var free: Int
        var lines = TenantLines<CheckedContinuation<Void, Never>>()

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
    func withTurn<T>(of tenant: String, _ body: () async throws -> T) async rethrows -> T {
        await take(tenant)
        defer { giveBack() }
        return try await body()
    }

    private func take(_ tenant: String) async {
        if state.withLockedValue({ $0.takeFree() }) { return }
        await withCheckedContinuation { (turn: CheckedContinuation<Void, Never>) in
            let now = state.withLockedValue { state -> Bool in
                // A turn given back since the first look is taken at once.
                if state.takeFree() { return true }
                state.lines.append(turn, for: tenant)
                return false
            }
            if now { turn.resume() }
        }
    }

    /// Hands the turn to the next read in line, or frees it.
    private func giveBack() {
        let next = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            guard let turn = state.lines.next() else {
                state.free += 1
                return nil
            }
            return turn
        }
        next?.resume()
    }
}
