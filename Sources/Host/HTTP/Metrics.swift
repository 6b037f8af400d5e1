import NIOConcurrencyHelpers

/// The node's counters and gauges, served as Prometheus text on `/metrics`.
///
/// Counters are kept per label set in one locked dictionary: the volumes here
/// (one increment per request and per event) do not call for more.
public final class Metrics: Sendable {
    private struct Series: Hashable {
        let name: String
        let labels: String
    }

    private let counters = NIOLockedValueBox<[Series: Double]>([:])
    private let gauges: [(name: String, help: String, read: @Sendable () -> Double)]

    static let help: [String: String] = [
        "northstar_http_requests_total": "HTTP requests answered, by status code.",
        "northstar_events_appended_total": "Events made durable in the log, by type.",
    ]

    /// - Parameter gauges: values read at scrape time (live subscribers, ...).
    public init(gauges: [(name: String, help: String, read: @Sendable () -> Double)] = []) {
        self.gauges = gauges
    }

    /// Adds one to a counter. Label values are escaped as Prometheus requires.
    public func increment(_ name: String, _ labels: [(String, String)] = []) {
        let rendered = labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",")
        counters.withLockedValue { $0[Series(name: name, labels: rendered), default: 0] += 1 }
    }

    /// The exposition text (Prometheus text format 0.0.4).
    public func render() -> String {
        let snapshot = counters.withLockedValue { $0 }
        var text = ""
        for name in Set(snapshot.keys.map(\.name)).union(Self.help.keys).sorted() {
            text += "# HELP \(name) \(Self.help[name] ?? name)\n# TYPE \(name) counter\n"
            for (series, value) in snapshot.filter({ $0.key.name == name }).sorted(by: { $0.key.labels < $1.key.labels }) {
                text += series.labels.isEmpty ? "\(name) \(Int(value))\n" : "\(name){\(series.labels)} \(Int(value))\n"
            }
        }
        for gauge in gauges {
            text += "# HELP \(gauge.name) \(gauge.help)\n# TYPE \(gauge.name) gauge\n\(gauge.name) \(Int(gauge.read()))\n"
        }
        return text
    }

    private static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
