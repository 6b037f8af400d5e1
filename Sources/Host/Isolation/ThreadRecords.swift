import NIOConcurrencyHelpers

/// The thread records this node has read, by id, so that a busy thread's
/// writes and subscriptions do not read its record from the store again.
///
/// Only threads: a thread's record never changes after it is made (nothing
/// updates or deletes one), so a copy read once stays true, on this node
/// and on every other one sharing the store. A canvas's record carries its
/// `head_rev`, which every command moves: canvases are always read.
/// Misses are not kept (a thread made on another node must become visible).
///
/// Isolation is unchanged: the resolver checks kind, tenant and env on the
/// cached record exactly as on one just read. Bounded: past `capacity`,
/// one entry goes for each one added.
final class ThreadRecords: Sendable {
    let capacity: Int
    private let records = NIOLockedValueBox<[String: Resource]>([:])

    init(capacity: Int = 4096) {
        self.capacity = capacity
    }

    func record(_ id: String) -> Resource? {
        records.withLockedValue { $0[id] }
    }

    /// Keeps `resource` if it is a thread.
    func keep(_ resource: Resource) {
        guard resource.kind == .thread else { return }
        records.withLockedValue { records in
            if records.count >= capacity, records[resource.id] == nil, let any = records.keys.first {
                records.removeValue(forKey: any)
            }
            records[resource.id] = resource
        }
    }

    var count: Int { records.withLockedValue { $0.count } }
}
