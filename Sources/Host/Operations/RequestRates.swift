import Dispatch
import NIOConcurrencyHelpers

/// How often each user, and each tenant, may make requests of one kind on
/// this node: writes (`limits.writes_per_second_per_user` and
/// `..._per_tenant`), reads (`limits.reads_per_second_per_user` and
/// `..._per_tenant`: REST reads, refused past them, and streams opened or
/// subscribed, paced) or WebSocket messages
/// (`limits.ws_messages_per_second_per_user` and `..._per_tenant`, paced);
/// one instance per kind. Paced requests are slowed, not refused: see
/// `pace`.
///
/// Every write, over REST or a transport's `kernel_call` (a message, a
/// command, a gesture's start, samples or end, a thread or canvas created,
/// an artifact or media object uploaded or deleted), and every REST `GET`
/// or `HEAD`, takes one token from its user's bucket and one from its
/// tenant's. A bucket holds two seconds' worth and refills at its rate.
/// When either is empty the request is refused with 429 `rate_limited` and
/// when to retry, decided before a body is read, and takes nothing (over
/// REST the refusal is held for the wait; see `admitHolding`). So one
/// user's token (an end user's, handed to a browser) cannot fill the disk,
/// take the writer every tenant shares, or keep the node's cores busy with
/// reads, and a tenant whose app mints tokens for many users is bounded as
/// a whole. Per node, as the connection caps are: behind a proxy, each node
/// counts its own.
///
/// THREAD: any; one lock, held for a dictionary lookup and some arithmetic.
public final class RequestRates: Sendable {
    /// The rates; 0 turns a limit off.
    public struct Limits: Sendable, Equatable {
        /// Requests per second one user (a tenant, env and user id) may make.
        public var perUser: Int
        /// Requests per second one tenant may make, all its users together.
        public var perTenant: Int

        public init(perUser: Int, perTenant: Int) {
            self.perUser = perUser
            self.perTenant = perTenant
        }

        /// The defaults for writes: far above what a person's app sends,
        /// far below what the writer commits (about 17,000 a second here).
        public static let writes = Limits(perUser: 100, perTenant: 2000)
        /// The defaults for REST reads: an app follows its streams over SSE
        /// or a WebSocket and reads pages now and then.
        public static let reads = Limits(perUser: 200, perTenant: 5000)
        /// The defaults for WebSocket messages: a page drawing sends a batch
        /// of samples every 50 ms per gesture, its writes are capped at 100 a
        /// second, and it subscribes and pings now and then.
        public static let webSocketMessages = Limits(perUser: 200, perTenant: 5000)
    }

    /// Which requests an instance counts: what its config keys, messages
    /// and metric are named after.
    public enum Kind: String, Sendable {
        case writes, reads
        case webSocketMessages = "ws_messages"

        /// The config keys of its rates under `limits` (whole, so they can be searched for).
        public var userKey: String {
            switch self {
            case .writes: "writes_per_second_per_user"
            case .reads: "reads_per_second_per_user"
            case .webSocketMessages: "ws_messages_per_second_per_user"
            }
        }
        public var tenantKey: String {
            switch self {
            case .writes: "writes_per_second_per_tenant"
            case .reads: "reads_per_second_per_tenant"
            case .webSocketMessages: "ws_messages_per_second_per_tenant"
            }
        }
    }

    /// How many seconds' worth a bucket holds: a burst a client may send at
    /// once after a quiet spell.
    static let burstSeconds: UInt64 = 2

    public let kind: Kind
    public let limits: Limits
    private let state = NIOLockedValueBox(State())
    private let now: @Sendable () -> UInt64
    private let metrics: Metrics?

    private struct State {
        // Each bucket is kept as the instant it will be full again (the
        // generic cell rate algorithm: whole nanoseconds, no rounding). One
        // full already is the same as none, so the sweep drops it.
        var users: [UserIdentity: UInt64] = [:]
        var tenants: [String: UInt64] = [:]
        /// The bucket count past which the next request sweeps full buckets out.
        var sweepAt = 1024
    }

    /// `now` reads a monotonic clock in nanoseconds (tests pass their own).
    public init(_ kind: Kind, _ limits: Limits, metrics: Metrics? = nil,
                now: @escaping @Sendable () -> UInt64 = { DispatchTime.now().uptimeNanoseconds }) {
        self.kind = kind
        self.limits = limits
        self.metrics = metrics
        self.now = now
    }

    /// Takes one request from the context's user and tenant.
    /// - Throws: `KernelError` 429 `rate_limited` (with `retry_after_ms` and
    ///   which `limit`), taking nothing, when either has none left.
    func admit(_ context: RequestContext) throws {
        guard let (scope, wait) = refusal(for: context) else { return }
        throw refused(scope, retryAfterNanoseconds: wait, context: context)
    }

    /// As `admit`, but a refusal is answered only after `hold(for:)`, with
    /// what is left of the wait. For REST, where a client sends its next
    /// request on a connection once the last is answered: a client that
    /// ignores 429 and sends again at once makes a few requests a second per
    /// connection, not thousands, and one that waits as told is admitted on
    /// its next try.
    func admitHolding(_ context: RequestContext) async throws {
        guard let (scope, wait) = refusal(for: context) else { return }
        let hold = Self.hold(for: wait)
        try await ConnectionCount.holding { try await Task.sleep(nanoseconds: hold) }
        throw refused(scope, retryAfterNanoseconds: wait > hold ? wait - hold : 0, context: context)
    }

    /// How long a REST refusal is held: the wait, but at least 100 ms (so a
    /// client that ignores 429 cannot ask more often) and at most 1 s (so a
    /// connection is not held long).
    static func hold(for wait: UInt64) -> UInt64 {
        min(max(wait, 100_000_000), 1_000_000_000)
    }

    /// Takes one request from the context's user and tenant; nil when taken,
    /// or whose bucket is empty and for how many nanoseconds.
    private func refusal(for context: RequestContext) -> (LimitHolder, UInt64)? {
        if limits.perUser == 0 && limits.perTenant == 0 { return nil }
        let user = UserIdentity(context)
        let refusal: (LimitHolder, UInt64)? = state.withLockedValue { state in
            let now = self.now()
            let userTake = Self.take(from: state.users[user], rate: limits.perUser, now: now)
            let tenantTake = Self.take(from: state.tenants[user.tenant], rate: limits.perTenant, now: now)
            // Both or neither: a request refused by one limit takes nothing from the other.
            if case .wait(let nanoseconds) = userTake { return (.user, nanoseconds) }
            if case .wait(let nanoseconds) = tenantTake { return (.tenant, nanoseconds) }
            if case .taken(let full) = userTake { state.users[user] = full }
            if case .taken(let full) = tenantTake { state.tenants[user.tenant] = full }
            if state.users.count + state.tenants.count > state.sweepAt { sweep(&state, now: now) }
            return nil
        }
        if let (scope, _) = refusal { metrics?.increment("northstar_\(kind.rawValue)_rate_limited_total", [("limit", scope.rawValue)]) }
        return refusal
    }

    /// Takes the user's next place, however far ahead, and says how many
    /// nanoseconds to wait for it (0: at once).
    ///
    /// For requests that are slowed rather than refused: the messages of a
    /// WebSocket, read one at a time, whose reader waits before it reads
    /// the next (so the client's bytes wait in the kernel's socket buffers,
    /// and then in the client, which TCP slows to the pace the node reads),
    /// and a stream's subscribe, which starts when its place comes. A place
    /// is taken, not refused, so the waits queue in order, and a user (or
    /// tenant) is in debt by at most the places its waiters hold: one per
    /// socket, one per subscribe not yet started. REST reads past a debt are
    /// refused until it is paid.
    func pace(_ user: UserIdentity) -> UInt64 {
        if limits.perUser == 0 && limits.perTenant == 0 { return 0 }
        let wait = state.withLockedValue { state in
            let now = self.now()
            var wait: UInt64 = 0
            if limits.perUser > 0 {
                let place = Self.place(after: state.users[user], rate: limits.perUser, now: now)
                state.users[user] = place.fullAt
                wait = max(wait, place.wait)
            }
            if limits.perTenant > 0 {
                let place = Self.place(after: state.tenants[user.tenant], rate: limits.perTenant, now: now)
                state.tenants[user.tenant] = place.fullAt
                wait = max(wait, place.wait)
            }
            if state.users.count + state.tenants.count > state.sweepAt { sweep(&state, now: now) }
            return wait
        }
        if wait > 0 { metrics?.increment("northstar_\(kind.rawValue)_paced_total") }
        return wait
    }

    /// As `pace`, for a socket whose user is not known: its own bucket,
    /// `fullAt`, at a user's rate.
    func pace(alone fullAt: inout UInt64?) -> UInt64 {
        guard limits.perUser > 0 else { return 0 }
        let place = Self.place(after: fullAt, rate: limits.perUser, now: now())
        fullAt = place.fullAt
        if place.wait > 0 { metrics?.increment("northstar_\(kind.rawValue)_paced_total") }
        return place.wait
    }

    /// The next place in the bucket that is full again at `fullAt` (nil: it
    /// is full) at `rate` a second, taken even past the burst: the instant
    /// the bucket is full again after it, and how long until the place is
    /// due (0 within the burst).
    static func place(after fullAt: UInt64?, rate: Int, now: UInt64) -> (fullAt: UInt64, wait: UInt64) {
        let interval = 1_000_000_000 / UInt64(rate)
        let burst = interval * UInt64(rate) * burstSeconds
        let after = max(fullAt ?? now, now) + interval
        return (after, after - now > burst ? after - now - burst : 0)
    }

    /// Buckets held now, users' and tenants' together (for tests).
    var buckets: Int { state.withLockedValue { $0.users.count + $0.tenants.count } }

    /// What taking one request from a bucket comes to.
    enum Take {
        /// The limit is off.
        case unlimited
        /// Taken: the bucket is full again at this instant.
        case taken(fullAt: UInt64)
        /// None left: one comes in this many nanoseconds.
        case wait(UInt64)
    }

    /// Takes one request from the bucket that is full again at `fullAt`
    /// (nil: it is full) at `rate` requests a second.
    static func take(from fullAt: UInt64?, rate: Int, now: UInt64) -> Take {
        guard rate > 0 else { return .unlimited }
        let place = place(after: fullAt, rate: rate, now: now)
        // More than the burst ahead of now: none left until it is not.
        return place.wait > 0 ? .wait(place.wait) : .taken(fullAt: place.fullAt)
    }

    /// Drops the buckets that are full by now (the same as none), so the
    /// dictionaries hold only users and tenants that wrote in the last two
    /// seconds or so, however many ids a tenant's app mints.
    private func sweep(_ state: inout State, now: UInt64) {
        state.users = state.users.filter { $0.value > now }
        state.tenants = state.tenants.filter { $0.value > now }
        state.sweepAt = max(1024, 2 * (state.users.count + state.tenants.count))
    }

    private func refused(_ scope: LimitHolder, retryAfterNanoseconds wait: UInt64, context: RequestContext) -> KernelError {
        let milliseconds = Int((wait + 999_999) / 1_000_000)  // 0 once a held refusal waited it all out
        let when = milliseconds == 0 ? "send it again now" : "send it again in \(milliseconds) ms"
        let message = switch scope {
        case .user:
            "user \(context.userID) may make \(limits.perUser) \(kind.rawValue) a second on this node (limits.\(kind.userKey)); \(when)"
        case .tenant:
            "tenant \(context.tenant) may make \(limits.perTenant) \(kind.rawValue) a second on this node, all its users together (limits.\(kind.tenantKey)); \(when)"
        }
        return KernelError(.tooManyRequests, code: "rate_limited", message: message,
                           details: ["retry_after_ms": .number(Double(milliseconds)), "limit": .string(scope.rawValue)])
    }
}
