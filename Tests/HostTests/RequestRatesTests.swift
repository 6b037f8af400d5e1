import Testing
@testable import NorthstarHost

/// The writes and reads each user and tenant may make per second (`RequestRates`).
@Suite struct RequestRatesTests {
    private func context(tenant: String = "t_alpha", env: String = "dev", user: String = "alice") -> RequestContext {
        RequestContext(tenant: TenantID(tenant)!, env: env, userID: user, scopes: ["write"], requestID: "r", traceparent: "t")
    }

    private func rates(_ kind: RequestRates.Kind = .writes, perUser: Int, perTenant: Int, clock: Ticks) -> RequestRates {
        RequestRates(kind, .init(perUser: perUser, perTenant: perTenant), now: { clock.read() })
    }

    /// The refusal `admit` throws, or nil when it admitted.
    private func refusal(_ rates: RequestRates, _ context: RequestContext) -> KernelError? {
        do {
            try rates.admit(context)
            return nil
        } catch {
            return error as? KernelError
        }
    }

    @Test("a user writes two seconds' worth at once, the next is refused with when to retry, and the bucket refills at the rate")
    func burstThenRate() throws {
        let clock = Ticks()
        let rates = rates(perUser: 10, perTenant: 0, clock: clock)
        let alice = context()
        for _ in 0..<20 { #expect(refusal(rates, alice) == nil) }
        let refused = try #require(refusal(rates, alice))
        #expect(refused.kind == .tooManyRequests && refused.code == "rate_limited")
        #expect(refused.details["retry_after_ms"] == .number(100))  // one token at 10 a second
        #expect(refused.details["limit"] == .string("user"))
        #expect(refused.message.contains("limits.writes_per_second_per_user"))
        clock.advance(milliseconds: 99)
        #expect(refusal(rates, alice)?.details["retry_after_ms"] == .number(1))
        clock.advance(milliseconds: 1)
        #expect(refusal(rates, alice) == nil)
        #expect(refusal(rates, alice) != nil)
        // A quiet spell refills up to the burst, not past it.
        clock.advance(milliseconds: 60_000)
        for _ in 0..<20 { #expect(refusal(rates, alice) == nil) }
        #expect(refusal(rates, alice) != nil)
    }

    @Test("refused writes take nothing: a client that keeps asking is admitted as soon as a token comes")
    func refusalsTakeNothing() {
        let clock = Ticks()
        let rates = rates(perUser: 1, perTenant: 0, clock: clock)
        let alice = context()
        #expect(refusal(rates, alice) == nil && refusal(rates, alice) == nil)
        for _ in 0..<1000 { #expect(refusal(rates, alice) != nil) }
        clock.advance(milliseconds: 1000)
        #expect(refusal(rates, alice) == nil)
    }

    @Test("the same user id in another tenant or env, and another user, have buckets of their own")
    func usersAreCountedApart() {
        let clock = Ticks()
        let rates = rates(perUser: 1, perTenant: 0, clock: clock)
        let identities = [context(), context(tenant: "t_beta"), context(env: "staging"), context(user: "bob")]
        for identity in identities { #expect(refusal(rates, identity) == nil && refusal(rates, identity) == nil) }
        for identity in identities { #expect(refusal(rates, identity)?.details["limit"] == .string("user")) }
    }

    @Test("a tenant's users together stop at the tenant's rate; another tenant writes on, and a refusal by the tenant takes nothing from the user")
    func tenantRate() throws {
        let clock = Ticks()
        let rates = rates(perUser: 5, perTenant: 10, clock: clock)
        for user in 0..<20 { #expect(refusal(rates, context(user: "u\(user)")) == nil) }  // 20: the tenant's two seconds
        let refused = try #require(refusal(rates, context(user: "late")))
        #expect(refused.details["limit"] == .string("tenant"))
        #expect(refused.message.contains("limits.writes_per_second_per_tenant"))
        #expect(refusal(rates, context(tenant: "t_beta", user: "late")) == nil)
        // "late" was refused by its tenant: its own bucket is still full (10 writes) once the tenant's refills.
        clock.advance(milliseconds: 2000)
        for _ in 0..<10 { #expect(refusal(rates, context(user: "late")) == nil) }
        #expect(refusal(rates, context(user: "late"))?.details["limit"] == .string("user"))
    }

    @Test("0 turns a limit off")
    func zeroIsOff() {
        let clock = Ticks()
        let unlimited = rates(perUser: 0, perTenant: 0, clock: clock)
        for _ in 0..<10_000 { #expect(refusal(unlimited, context()) == nil) }
        #expect(unlimited.buckets == 0)
        let tenantOnly = rates(perUser: 0, perTenant: 3, clock: clock)
        for _ in 0..<6 { #expect(refusal(tenantOnly, context()) == nil) }
        #expect(refusal(tenantOnly, context(user: "bob"))?.details["limit"] == .string("tenant"))
    }

    @Test("buckets of users who stopped writing are dropped, however many user ids come and go")
    func bucketsAreSwept() {
        let clock = Ticks()
        let rates = rates(perUser: 10, perTenant: 0, clock: clock)
        for round in 0..<20 {
            for user in 0..<1000 { #expect(refusal(rates, context(user: "r\(round)u\(user)")) == nil) }
            clock.advance(milliseconds: 2000)  // every bucket of this round is full again by the next
        }
        #expect(rates.buckets <= 2048, "\(rates.buckets) buckets held for 1,000 users writing at once")
    }

    @Test("over REST a refusal is held for the wait, at least 100 ms and at most 1 s, and says what is left of it")
    func refusalsAreHeld() async throws {
        #expect(RequestRates.hold(for: 1_000_000) == 100_000_000)
        #expect(RequestRates.hold(for: 250_000_000) == 250_000_000)
        #expect(RequestRates.hold(for: 30_000_000_000) == 1_000_000_000)
        let clock = Ticks()
        let rates = rates(perUser: 20, perTenant: 0, clock: clock)
        let alice = context()
        for _ in 0..<40 { try await rates.admitHolding(alice) }  // the burst: answered at once
        let started = ContinuousClock.now
        do {
            try await rates.admitHolding(alice)
            Issue.record("admitted past the burst")
        } catch let refused as KernelError {
            #expect(ContinuousClock.now - started >= .milliseconds(100))
            #expect(refused.details["retry_after_ms"] == .number(0))  // the 50 ms wait is over by the answer
        }
        // Without the hold (a transport's kernel_call), the refusal is at once and names the whole wait.
        #expect(refusal(rates, alice)?.details["retry_after_ms"] == .number(50))
    }

    @Test("reads are counted apart from writes, and their refusal names the reads' limits")
    func readsAreTheirOwnKind() throws {
        let clock = Ticks()
        let (writes, reads) = (rates(perUser: 1, perTenant: 0, clock: clock), rates(.reads, perUser: 1, perTenant: 1, clock: clock))
        let alice = context()
        #expect(refusal(writes, alice) == nil && refusal(writes, alice) == nil && refusal(writes, alice) != nil)
        #expect(refusal(reads, alice) == nil && refusal(reads, alice) == nil)  // a user's writes take nothing from its reads
        let refused = try #require(refusal(reads, alice))
        #expect(refused.code == "rate_limited" && refused.message.contains("1 reads a second"))
        #expect(refused.message.contains("limits.reads_per_second_per_user"))
        #expect(refusal(reads, context(user: "bob"))?.message.contains("limits.reads_per_second_per_tenant") == true)
    }

    @Test("paced messages take their place past the burst, each one interval after the last, per user and per tenant")
    func pacing() {
        let clock = Ticks()
        let rates = RequestRates(.webSocketMessages, .init(perUser: 10, perTenant: 25), now: { clock.read() })
        let alice = UserIdentity(context()), bob = UserIdentity(context(user: "bob"))
        for _ in 0..<20 { #expect(rates.pace(alice) == 0) }
        #expect(rates.pace(alice) == 100_000_000)  // one interval at 10 a second
        #expect(rates.pace(alice) == 200_000_000)  // taken, not refused: the next is one more behind
        clock.advance(milliseconds: 300)
        #expect(rates.pace(alice) == 0)  // the 300 ms paid for the two places ahead and this one
        // Bob has a pace of his own; the tenant's (25 a second, 2 s ahead at most) is shared. Alice's 23 places
        // put it 920 ms ahead, 620 ms past the 300 ms gone.
        for _ in 0..<20 { #expect(rates.pace(bob) == 0) }
        #expect(rates.pace(bob) == 100_000_000)  // bob's own burst is spent first: the tenant is now 1,460 ms ahead
        // Carol's own burst is 20, but the tenant has 13 places left within its 2 s.
        let carol = UserIdentity(context(user: "carol"))
        var atOnce = 0
        while rates.pace(carol) == 0 { atOnce += 1 }
        #expect(atOnce == 13)  // the 14th was 2,020 ms ahead: 20 ms to wait
        #expect(rates.pace(carol) == 60_000_000)  // one interval of the tenant's more
        #expect(rates.pace(UserIdentity(context(tenant: "t_beta"))) == 0)
    }

    @Test("a socket of no known user is paced alone, at a user's rate; 0 paces nothing")
    func pacingAloneAndOff() {
        let clock = Ticks()
        let rates = RequestRates(.webSocketMessages, .init(perUser: 10, perTenant: 25), now: { clock.read() })
        var socket: UInt64?
        for _ in 0..<20 { #expect(rates.pace(alone: &socket) == 0) }
        #expect(rates.pace(alone: &socket) == 100_000_000)
        var another: UInt64?
        #expect(rates.pace(alone: &another) == 0)
        let off = RequestRates(.webSocketMessages, .init(perUser: 0, perTenant: 0), now: { clock.read() })
        for _ in 0..<10_000 { #expect(off.pace(UserIdentity(context())) == 0 && off.pace(alone: &socket) == 0) }
    }
}
