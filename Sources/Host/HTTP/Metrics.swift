import CoreMetrics
import NIOConcurrencyHelpers
import Prometheus

/// The node's metrics, recorded through swift-metrics into the node's own
/// Prometheus registry and served as Prometheus text on `/metrics`.
///
/// Counters, timers (histograms of durations) and recorders (histograms of
/// values) go through the swift-metrics API with a factory bound to this
/// registry, so two nodes in one process never mix. `serve` also makes it
/// the process's `MetricsSystem`, so what libraries record lands here too.
/// Gauges are read at scrape time.
///
/// Labels stay bounded: route templates, plugin and backend names, status
/// codes and error codes; never tenant, stream or user ids.
public final class Metrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    public let factory: PrometheusMetricsFactory
    private let gauges = NIOLockedValueBox<[(gauge: Prometheus.Gauge, read: @Sendable () -> Double)]>([])
    /// Each series' handler, made once: making one through the factory
    /// checks the name and labels and looks the series up in the registry,
    /// several microseconds that every request paid for each series it
    /// touched. Labels are bounded (above), so these stay small.
    private let counters = SeriesHandlers<any CounterHandler>()
    private let timers = SeriesHandlers<any TimerHandler>()
    private let recorders = SeriesHandlers<any RecorderHandler>()

    /// Bucket bounds for durations: from 100 µs, since a commit or a
    /// delivery on a quiet node takes well under a millisecond.
    static let durationBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .microseconds(2_500_000), .seconds(5), .seconds(10),
    ]

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = Self.durationBuckets
        factory.valueHistogramBuckets = ["northstar_commit_batch_size": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]]
        self.factory = factory
    }

    /// Adds gauges, read at scrape time (live subscribers, open connections...).
    public func addGauges(_ added: [(name: String, help: String, read: @Sendable () -> Double)]) {
        let made = added.map { gauge in
            (registry.makeGauge(descriptor: MetricNameDescriptor(metricName: gauge.name, unitName: "", helpText: gauge.help)), gauge.read)
        }
        gauges.withLockedValue { $0 += made }
    }

    /// Adds one to a counter.
    public func increment(_ name: String, _ labels: [(String, String)] = [], by amount: Int = 1) {
        let counter = counters.handler(name, labels) { factory.makeCounter(label: name, dimensions: labels) }
        counter.increment(by: Int64(amount))
    }

    /// Records a duration in a histogram.
    public func record(_ name: String, _ labels: [(String, String)] = [], duration: Duration) {
        let timer = timers.handler(name, labels) { factory.makeTimer(label: name, dimensions: labels) }
        let (seconds, attoseconds) = duration.components
        timer.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// Records a value (a batch size) in a histogram.
    public func record(_ name: String, _ labels: [(String, String)] = [], value: Double) {
        let recorder = recorders.handler(name, labels) { factory.makeRecorder(label: name, dimensions: labels, aggregate: true) }
        recorder.record(value)
    }

    /// The exposition text (Prometheus text format 0.0.4).
    public func render() -> String {
        for (gauge, read) in gauges.withLockedValue({ $0 }) { gauge.set(read()) }
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}

/// One kind of metric's handlers, by series (name and labels).
private final class SeriesHandlers<Handler: Sendable>: Sendable {
    private struct Series: Hashable {
        let name: String
        let labels: [String]
    }

    private let made = NIOLockedValueBox<[Series: Handler]>([:])

    /// The series' handler, made by `make` the first time.
    func handler(_ name: String, _ labels: [(String, String)], make: () -> Handler) -> Handler {
        let series = Series(name: name, labels: labels.flatMap { [$0.0, $0.1] })
        if let known = made.withLockedValue({ $0[series] }) { return known }
        // Made outside the lock: the registry takes its own. Two threads may
        // make the same series at once; the registry hands both the same one.
        let handler = make()
        made.withLockedValue { $0[series] = handler }
        return handler
    }
}
