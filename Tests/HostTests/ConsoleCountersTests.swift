import Foundation
@testable import NorthstarHost
import Testing

/// What the console counts: events per stream in one-minute windows, and
/// the errors answered lately, both bounded.
@Suite struct ConsoleCountersTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000 - 1_800_000_000.truncatingRemainder(dividingBy: 60))

    @Test("the busiest streams of this minute and the last come first; older minutes are forgotten")
    func rates() {
        let rates = StreamRates()
        for _ in 0..<3 { rates.record(StreamName("chat:a"), now: start) }
        rates.record(StreamName("chat:b"), now: start)
        for _ in 0..<5 { rates.record(StreamName("chat:b"), now: start.addingTimeInterval(61)) }
        let hottest = rates.hottest(10, now: start.addingTimeInterval(61))
        #expect(hottest.map(\.stream.rawValue) == ["chat:b", "chat:a"])
        #expect(hottest[0].lastMinute == 1 && hottest[0].thisMinute == 5)
        #expect(hottest[1].lastMinute == 3 && hottest[1].thisMinute == 0)
        #expect(rates.hottest(10, now: start.addingTimeInterval(300)).isEmpty)
    }

    @Test("past its capacity a minute counts no new stream, and still counts the ones it has")
    func ratesBounded() {
        let rates = StreamRates(capacity: 2)
        for name in ["chat:a", "chat:b", "chat:c", "chat:a"] { rates.record(StreamName(name), now: start) }
        #expect(rates.hottest(10, now: start).map(\.stream.rawValue) == ["chat:a", "chat:b"])
    }

    @Test("errors are kept by code, most recent first, up to the capacity")
    func errors() {
        let errors = RecentErrors(capacity: 2)
        errors.record(code: "not_found", status: 404, route: "/v1/threads/{thread_id}", at: start)
        errors.record(code: "unauthorized", status: 401, route: "/v1/threads", at: start.addingTimeInterval(1))
        errors.record(code: "not_found", status: 404, route: "/v1/canvases/{canvas_id}", at: start.addingTimeInterval(2))
        errors.record(code: "conflict", status: 409, route: "/x", at: start.addingTimeInterval(3))
        let snapshot = errors.snapshot
        #expect(snapshot.map(\.code) == ["not_found", "unauthorized"])
        #expect(snapshot[0].entry.count == 2 && snapshot[0].entry.route == "/v1/canvases/{canvas_id}")
    }
}
