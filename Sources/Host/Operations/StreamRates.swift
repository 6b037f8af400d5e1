import Foundation
import NIOConcurrencyHelpers

/// How many events each stream got lately, for the console's hottest
/// streams: counts in one-minute windows (this one and the last), over at
/// most `capacity` streams a minute.
final class StreamRates: Sendable {
    private struct Window {
        var minute: Int64 = 0
        var current: [StreamName: Int] = [:]
        var previous: [StreamName: Int] = [:]
    }

    private let window = NIOLockedValueBox(Window())
    let capacity: Int

    init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    /// Counts one event of `stream`.
    func record(_ stream: StreamName, now: Date = Date()) {
        let minute = Int64(now.timeIntervalSince1970 / 60)
        window.withLockedValue { window in
            roll(&window, to: minute)
            // Past the capacity, a stream new this minute is not counted: O(1)
            // per event on the commit path, and the busiest are counted already.
            guard window.current[stream] != nil || window.current.count < capacity else { return }
            window.current[stream, default: 0] += 1
        }
    }

    /// The `limit` streams with the most events in the last full minute and
    /// this one, busiest first.
    func hottest(_ limit: Int, now: Date = Date()) -> [(stream: StreamName, lastMinute: Int, thisMinute: Int)] {
        let minute = Int64(now.timeIntervalSince1970 / 60)
        return window.withLockedValue { window in
            roll(&window, to: minute)
            let streams = Set(window.current.keys).union(window.previous.keys)
            return streams.map { ($0, window.previous[$0] ?? 0, window.current[$0] ?? 0) }
                .sorted { ($0.1 + $0.2, $0.0.rawValue) > ($1.1 + $1.2, $1.0.rawValue) }
                .prefix(limit).map { $0 }
        }
    }

    private func roll(_ window: inout Window, to minute: Int64) {
        guard minute != window.minute else { return }
        window.previous = minute == window.minute + 1 ? window.current : [:]
        window.current = [:]
        window.minute = minute
    }
}
