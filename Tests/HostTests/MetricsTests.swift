@testable import NorthstarHost
import Testing

/// The node's metrics: each series is made once and every later record
/// lands on it, from any thread.
@Suite struct MetricsTests {
    /// The value of the line of `text` that starts with `series` (name and labels).
    private func value(of series: String, in text: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last!) }
    }

    @Test("a counter adds up across calls, and each label set is a series of its own")
    func counters() {
        let metrics = Metrics()
        metrics.increment("northstar_test_total", [("status", "200")])
        metrics.increment("northstar_test_total", [("status", "200")], by: 2)
        metrics.increment("northstar_test_total", [("status", "404")])
        metrics.increment("northstar_plain_total")
        let text = metrics.render()
        #expect(value(of: #"northstar_test_total{status="200"}"#, in: text) == 3)
        #expect(value(of: #"northstar_test_total{status="404"}"#, in: text) == 1)
        #expect(value(of: "northstar_plain_total", in: text) == 1)
    }

    @Test("durations and values land in their histograms, call after call")
    func histograms() {
        let metrics = Metrics()
        metrics.record("northstar_test_seconds", [("route", "/a")], duration: .milliseconds(2))
        metrics.record("northstar_test_seconds", [("route", "/a")], duration: .milliseconds(4))
        metrics.record("northstar_test_seconds", [("route", "/b")], duration: .milliseconds(1))
        metrics.record("northstar_commit_batch_size", value: 3)
        metrics.record("northstar_commit_batch_size", value: 5)
        let text = metrics.render()
        #expect(value(of: #"northstar_test_seconds_count{route="/a"}"#, in: text) == 2)
        #expect(value(of: #"northstar_test_seconds_sum{route="/a"}"#, in: text) == 0.006)
        #expect(value(of: #"northstar_test_seconds_count{route="/b"}"#, in: text) == 1)
        #expect(value(of: "northstar_commit_batch_size_count", in: text) == 2)
        #expect(value(of: "northstar_commit_batch_size_sum", in: text) == 8)
        // Its own buckets (1, 2, 4, 8...), not the durations'.
        #expect(value(of: #"northstar_commit_batch_size_bucket{le="4.0"}"#, in: text) == 1)
    }

    @Test("two nodes in one process keep their series apart")
    func separateNodes() {
        let first = Metrics(), second = Metrics()
        first.increment("northstar_test_total", [("status", "200")])
        #expect(value(of: #"northstar_test_total{status="200"}"#, in: first.render()) == 1)
        #expect(value(of: #"northstar_test_total{status="200"}"#, in: second.render()) == nil)
    }

    @Test("records from many threads at once are all counted, on one series")
    func concurrent() async {
        let metrics = Metrics()
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for index in 0..<500 {
                        metrics.increment("northstar_test_total", [("status", index % 2 == 0 ? "200" : "500")])
                        metrics.record("northstar_test_seconds", [("task", "\(task % 2)")], duration: .microseconds(10))
                    }
                }
            }
        }
        let text = metrics.render()
        #expect(value(of: #"northstar_test_total{status="200"}"#, in: text) == 2000)
        #expect(value(of: #"northstar_test_total{status="500"}"#, in: text) == 2000)
        #expect(value(of: #"northstar_test_seconds_count{task="0"}"#, in: text) == 2000)
        #expect(value(of: #"northstar_test_seconds_count{task="1"}"#, in: text) == 2000)
    }
}
