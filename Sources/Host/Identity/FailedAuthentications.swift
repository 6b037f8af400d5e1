import Dispatch
import NIOConcurrencyHelpers

/// How many failed authentications (answers of 401) the node gives at once
/// each second, all clients together (`limits.auth_failures_per_second`).
///
/// A credential that is missing, malformed, forged or expired costs the node
/// the request's HTTP work and, for a signed one, a hop to a thread that may
/// block and a signature check; a rejection is never remembered (see
/// `VerifiedCredentials`). So a client that sends bad credentials as fast as
/// the node answers (a bug looping on an expired token, or a hostile client)
/// takes CPU every tenant needs, and the request rates, which count users,
/// cannot see it: it has no user. Past this rate, with a burst of two
/// seconds' worth, each failure is answered `hold` later: such a client then
/// asks about once a second per connection, whatever it does.
///
/// The answer is the same 401 either way, and an accepted credential is
/// never held: a client with a good credential loses nothing, one with a bad
/// credential learns of it a second later while a flood lasts. Counted for
/// the node, not per address, so that behind a proxy (where every client has
/// the proxy's address) it works the same, and a flood from many addresses
/// is bounded too.
///
/// THREAD: any; one lock, held for some arithmetic.
final class FailedAuthentications: Sendable {
    /// How long a failure past the rate waits before it is answered.
    static let hold: Duration = .seconds(1)

    /// Failures per second answered at once; 0 turns the hold off.
    let perSecond: Int
    private let fullAt = NIOLockedValueBox<UInt64?>(nil)
    private let now: @Sendable () -> UInt64
    private let metrics: Metrics?

    /// `now` reads a monotonic clock in nanoseconds (tests pass their own).
    init(perSecond: Int, metrics: Metrics? = nil, now: @escaping @Sendable () -> UInt64 = { DispatchTime.now().uptimeNanoseconds }) {
        self.perSecond = perSecond
        self.metrics = metrics
        self.now = now
    }

    /// Counts one failure: false while the node's failures are within their
    /// rate, true past it (the failure is to be held; it takes nothing).
    func overRate() -> Bool {
        let take = fullAt.withLockedValue { fullAt -> RequestRates.Take in
            let take = RequestRates.take(from: fullAt, rate: perSecond, now: now())
            if case .taken(let full) = take { fullAt = full }
            return take
        }
        guard case .wait = take else { return false }
        metrics?.increment("northstar_auth_failures_held_total")
        return true
    }

    /// Called before a 401 is answered: returns at once within the rate,
    /// after `hold` past it (or when the request's task is cancelled).
    func afterFailure() async {
        guard overRate() else { return }
        // The connection may be closed to make room meanwhile: its client is the one failing.
        await ConnectionCount.holding { try? await Task.sleep(for: Self.hold) }
    }
}
