import Testing
@testable import NorthstarHost

/// Failed authentications past the node's rate are held (`FailedAuthentications`).
@Suite struct FailedAuthenticationsTests {
    @Test("two seconds' worth of failures are answered at once, the next are held, and the rate refills")
    func burstThenRate() {
        let clock = Ticks()
        let failures = FailedAuthentications(perSecond: 10, now: { clock.read() })
        for _ in 0..<20 { #expect(!failures.overRate()) }
        #expect(failures.overRate())
        clock.advance(milliseconds: 99)
        #expect(failures.overRate())
        clock.advance(milliseconds: 1)
        #expect(!failures.overRate())  // one came back at 10 a second
        #expect(failures.overRate())
        clock.advance(milliseconds: 60_000)
        for _ in 0..<20 { #expect(!failures.overRate()) }  // a quiet spell refills the burst, not more
        #expect(failures.overRate())
    }

    @Test("held failures take nothing: however many are held, the next token comes at the rate")
    func heldTakeNothing() {
        let clock = Ticks()
        let failures = FailedAuthentications(perSecond: 1, now: { clock.read() })
        #expect(!failures.overRate() && !failures.overRate())
        for _ in 0..<10_000 { #expect(failures.overRate()) }
        clock.advance(milliseconds: 1000)
        #expect(!failures.overRate())
    }

    @Test("0 holds nothing")
    func zeroIsOff() {
        let failures = FailedAuthentications(perSecond: 0)
        for _ in 0..<100_000 { #expect(!failures.overRate()) }
    }

    @Test("a failure within the rate returns at once; past it, after the hold")
    func afterFailureWaits() async {
        let clock = Ticks()
        let failures = FailedAuthentications(perSecond: 1, now: { clock.read() })
        let started = ContinuousClock.now
        await failures.afterFailure()
        await failures.afterFailure()
        #expect(ContinuousClock.now - started < FailedAuthentications.hold)
        await failures.afterFailure()
        #expect(ContinuousClock.now - started >= FailedAuthentications.hold)
    }
}
