import NIOConcurrencyHelpers
@testable import NorthstarHost
import Testing

/// The cache of accepted credentials: how long, how many, and what counts
/// as the same credential.
@Suite struct VerifiedCredentialsTests {
    /// A clock the test moves by hand.
    final class Hands: Sendable {
        private let offset = NIOLockedValueBox(Duration.zero)
        private let start = ContinuousClock.now
        func advance(_ by: Duration) { offset.withLockedValue { $0 += by } }
        var now: ContinuousClock.Instant { start + offset.withLockedValue { $0 } }
    }

    private func bearer(_ value: String, source: Credential.Source = .header) -> Credential {
        Credential(source: source, scheme: "Bearer", value: value)
    }

    @Test("an entry lives for its lifetime, then is gone")
    func lifetime() {
        let hands = Hands()
        let cache = VerifiedCredentials(lifetime: .seconds(30), capacity: 10, now: { hands.now })
        cache.remember(bearer("a"), provider: "jwt", claims: ["user_id": "alice"])
        hands.advance(.seconds(29))
        #expect(cache.lookup(bearer("a"))?.claims["user_id"] == "alice")
        #expect(cache.lookup(bearer("a"))?.provider == "jwt")
        hands.advance(.seconds(1))
        #expect(cache.lookup(bearer("a")) == nil)
        #expect(cache.count == 0)
    }

    @Test("where a credential came from and its scheme are part of it")
    func sameValueElsewhereIsAnotherCredential() {
        let cache = VerifiedCredentials(lifetime: .seconds(30), capacity: 10)
        cache.remember(bearer("a"), provider: "jwt", claims: [:])
        #expect(cache.lookup(bearer("a")) != nil)
        #expect(cache.lookup(bearer("a", source: .query)) == nil)
        #expect(cache.lookup(bearer("a", source: .webSocketProtocol)) == nil)
        #expect(cache.lookup(Credential(source: .header, scheme: "ApiKey", value: "a")) == nil)
        #expect(cache.lookup(bearer("a ")) == nil)
        // The scheme and the value are separated: "Bearer"+"x" is not "Beare"+"rx".
        cache.remember(Credential(source: .header, scheme: "Beare", value: "rx"), provider: "jwt", claims: [:])
        #expect(cache.lookup(bearer("x")) == nil)
    }

    @Test("at capacity the oldest entry leaves first")
    func capacity() {
        let cache = VerifiedCredentials(lifetime: .seconds(30), capacity: 2)
        cache.remember(bearer("a"), provider: "jwt", claims: [:])
        cache.remember(bearer("b"), provider: "jwt", claims: [:])
        cache.remember(bearer("c"), provider: "jwt", claims: [:])
        #expect(cache.lookup(bearer("a")) == nil)
        #expect(cache.lookup(bearer("b")) != nil && cache.lookup(bearer("c")) != nil)
        #expect(cache.count == 2)
    }

    @Test("an entry verified again is as young as its new verification")
    func reverifiedEntryIsNotEvictedEarly() {
        let hands = Hands()
        let cache = VerifiedCredentials(lifetime: .seconds(30), capacity: 2, now: { hands.now })
        cache.remember(bearer("a"), provider: "jwt", claims: [:])
        hands.advance(.seconds(31))
        #expect(cache.lookup(bearer("a")) == nil)
        cache.remember(bearer("b"), provider: "jwt", claims: [:])
        cache.remember(bearer("a"), provider: "jwt", claims: [:])
        cache.remember(bearer("c"), provider: "jwt", claims: [:])
        // "a"'s first place was stale: "b" is the oldest live entry and leaves.
        #expect(cache.lookup(bearer("a")) != nil)
        #expect(cache.lookup(bearer("b")) == nil)
        #expect(cache.lookup(bearer("c")) != nil)
    }

    @Test("many credentials through a small cache keep it at its capacity")
    func bounded() {
        let hands = Hands()
        let cache = VerifiedCredentials(lifetime: .seconds(1), capacity: 100, now: { hands.now })
        for index in 0..<50_000 {
            cache.remember(bearer("token-\(index % 300)"), provider: "jwt", claims: [:])
            if index % 1000 == 0 { hands.advance(.seconds(2)) }
            #expect(cache.count <= 100)
        }
        #expect(cache.lookup(bearer("token-\(49_999 % 300)")) != nil)
    }
}
