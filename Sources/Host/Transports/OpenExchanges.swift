import Logging
import NIOConcurrencyHelpers

/// The exchanges of transport routes that have not finished yet, so that a
/// draining node can end the ones its plugins never end.
///
/// A plugin that never calls `response_end` would otherwise hold its
/// connection, and with it the listener's graceful shutdown, forever: the
/// plugins' `stop` would never be reached. At the drain deadline the host
/// ends each one itself, closes its connection and names the plugin and the
/// route in the log.
///
/// Entries are weak: an exchange leaves when it is freed, however its
/// connection ended, so nothing here outlives its request.
final class OpenExchanges: Sendable {
    private struct Entry {
        weak var exchange: Exchange?
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        /// Past the drain deadline: new exchanges are refused.
        var closed = false
    }

    private let state = NIOLockedValueBox(State())

    /// Adds `exchange`; false once the node ended its exchanges (it is draining).
    func add(_ exchange: Exchange) -> Bool {
        state.withLockedValue { state in
            guard !state.closed else { return false }
            state.entries[ObjectIdentifier(exchange)] = Entry(exchange: exchange)
            return true
        }
    }

    /// Forgets `exchange` (from its `deinit`).
    func remove(_ id: ObjectIdentifier) {
        _ = state.withLockedValue { $0.entries.removeValue(forKey: id) }
    }

    /// The exchanges whose answer is still under way.
    var unfinished: [Exchange] {
        state.withLockedValue { state in state.entries.values.compactMap(\.exchange) }.filter { !$0.isFinished }
    }

    /// Waits until every exchange finished or `deadline` passed, then ends
    /// what is left, and refuses exchanges from then on.
    func drain(until deadline: ContinuousClock.Instant, logger: Logger) async {
        while !unfinished.isEmpty, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let left = state.withLockedValue { state -> [Exchange] in
            state.closed = true
            return state.entries.values.compactMap(\.exchange)
        }.filter { !$0.isFinished }
        for exchange in left {
            exchange.endForShutdown(logger: logger)
        }
    }
}
