import Crypto
import NIOConcurrencyHelpers

/// Credentials an auth plugin accepted lately, and the claims it gave.
///
/// A client sends the same token with every request; asking the plugin each
/// time costs a hop to a thread that may block and the plugin's own work
/// (for a JWT: parsing, a signature check). So an accepted credential is
/// remembered for `lifetime`, and its claims are checked again against the
/// node's rules (expiry, env) on every request, as if just verified.
///
/// What this trades: a credential the plugin would now refuse (an API key
/// revoked at its source) keeps working until its entry is older than
/// `lifetime`. Rejections are never remembered, so a key that starts
/// working works at once, and garbage cannot fill the cache.
///
/// Entries are keyed by a SHA-256 of where the credential came from, its
/// scheme and its value, so the cache holds no secret. At `capacity` the
/// oldest entry leaves first.
///
/// THREAD: any.
final class VerifiedCredentials: Sendable {
    struct Entry: Sendable {
        let provider: String
        let claims: [String: String]
        let verifiedAt: ContinuousClock.Instant
    }

    let lifetime: Duration
    let capacity: Int
    private let now: @Sendable () -> ContinuousClock.Instant
    private let state = NIOLockedValueBox(State())

    private struct State {
        var entries: [SHA256Digest: (entry: Entry, added: Int)] = [:]
        /// Keys in the order they were added (with when): the oldest is
        /// evicted first. A place whose `added` no longer matches its
        /// entry's is stale (the key expired, or was added again later).
        var order: [(key: SHA256Digest, added: Int)] = []
        var orderStart = 0
        var added = 0
    }

    init(lifetime: Duration, capacity: Int, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.lifetime = lifetime
        self.capacity = max(1, capacity)
        self.now = now
    }

    var count: Int { state.withLockedValue { $0.entries.count } }

    /// What the plugin said about `credential` within `lifetime`, if anything.
    func lookup(_ credential: Credential) -> Entry? {
        let key = Self.key(credential)
        let cutoff = now() - lifetime
        return state.withLockedValue { state in
            guard let (entry, _) = state.entries[key] else { return nil }
            guard entry.verifiedAt > cutoff else {
                state.entries[key] = nil
                return nil
            }
            return entry
        }
    }

    /// Remembers that `provider` accepted `credential` with `claims`.
    func remember(_ credential: Credential, provider: String, claims: [String: String]) {
        let key = Self.key(credential)
        let entry = Entry(provider: provider, claims: claims, verifiedAt: now())
        state.withLockedValue { state in
            state.added += 1
            state.entries[key] = (entry, state.added)
            state.order.append((key, state.added))
            while state.entries.count > capacity {
                let oldest = state.order[state.orderStart]
                state.orderStart += 1
                if state.entries[oldest.key]?.added == oldest.added { state.entries[oldest.key] = nil }
            }
            // Stale places pile up as keys expire or come again; compact once
            // they outnumber the live entries, so `order` stays O(capacity).
            if state.order.count > 2 * max(state.entries.count, 16) {
                let live = state.entries
                state.order = state.order[state.orderStart...].filter { live[$0.key]?.added == $0.added }
                state.orderStart = 0
            }
        }
    }

    private static func key(_ credential: Credential) -> SHA256Digest {
        var hash = SHA256()
        withUnsafeBytes(of: credential.source.rawValue.littleEndian) { hash.update(bufferPointer: $0) }
        hash.update(data: Array(credential.scheme.utf8))
        hash.update(data: [0])
        hash.update(data: Array(credential.value.utf8))
        return hash.finalize()
    }
}
