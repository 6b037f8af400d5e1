import Foundation
import NIOConcurrencyHelpers

/// The errors the node answered lately, by code: how many, the last status
/// and route, and when. For the console; bounded to `capacity` codes (codes
/// are a fixed vocabulary, so it is never reached in practice).
final class RecentErrors: Sendable {
    struct Entry: Sendable {
        var count: Int
        var status: Int
        var route: String
        var lastAt: Date
    }

    private let entries = NIOLockedValueBox<[String: Entry]>([:])
    let capacity: Int

    init(capacity: Int = 200) {
        self.capacity = capacity
    }

    func record(code: String, status: Int, route: String, at time: Date = Date()) {
        entries.withLockedValue { entries in
            if var entry = entries[code] {
                entry.count += 1
                entry.status = status
                entry.route = route
                entry.lastAt = time
                entries[code] = entry
            } else if entries.count < capacity {
                entries[code] = Entry(count: 1, status: status, route: route, lastAt: time)
            }
        }
    }

    /// Every code seen, most recent first.
    var snapshot: [(code: String, entry: Entry)] {
        entries.withLockedValue { $0 }.map { ($0.key, $0.value) }.sorted { $0.entry.lastAt > $1.entry.lastAt }
    }
}
