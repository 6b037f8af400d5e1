import Dispatch
import NIOConcurrencyHelpers
import NIOCore

/// The store's reads, run one at a time, taking turns between tenants.
///
/// SQLite reads through one connection, so reads wait for each other. In
/// arrival order, one tenant's burst (a hundred subscribers catching up on a
/// long thread, each reading a page of up to 1 MiB) would queue ahead of
/// every other tenant's reads, and a one-row read would wait for all of
/// them. Here each tenant has a line of its own, and the lines take turns,
/// a read each: another tenant's read waits for at most one read per tenant
/// with reads waiting, whatever any of them has queued.
///
/// THREAD: `submit` from any thread; reads run one at a time on `queue`.
final class FairReadQueue: Sendable {
    typealias Read = @Sendable () -> Void

    private struct Lines {
        /// The reads waiting, per tenant; a tenant with none has no entry.
        var waiting: [String: CircularBuffer<Read>] = [:]
        /// Tenants with reads waiting, in the order of their next turn.
        var turns = CircularBuffer<String>()
        /// A drain is running on `queue`.
        var draining = false
    }

    private let lines = NIOLockedValueBox(Lines())
    private let queue: DispatchQueue

    init(label: String) {
        queue = DispatchQueue(label: label)
    }

    /// Queues `read` on the line of `tenant` ("" for the node's own reads).
    func submit(tenant: String, _ read: @escaping Read) {
        let startDrain = lines.withLockedValue { lines -> Bool in
            if lines.waiting[tenant] == nil {
                lines.waiting[tenant] = CircularBuffer()
                lines.turns.append(tenant)
            }
            lines.waiting[tenant]!.append(read)
            defer { lines.draining = true }
            return !lines.draining
        }
        if startDrain { queue.async { self.drain() } }
    }

    private func drain() {
        while let read = next() { read() }
    }

    /// The first read of the tenant whose turn it is; the tenant goes to the
    /// back of the turns if it has more. Nil, and the drain ends, when none waits.
    private func next() -> Read? {
        lines.withLockedValue { lines in
            guard let tenant = lines.turns.popFirst() else {
                lines.draining = false
                return nil
            }
            let read = lines.waiting[tenant]!.removeFirst()
            if lines.waiting[tenant]!.isEmpty {
                lines.waiting[tenant] = nil
            } else {
                lines.turns.append(tenant)
            }
            return read
        }
    }
}

/// Whose read the current task makes, for the store's turns: a request's
/// tenant once it is authenticated, a subscription's while it catches up,
/// "" for the node's own reads.
enum ReadingTenant {
    /// Set around work done for a tenant outside its request (a catch-up).
    @TaskLocal static var named: String?

    static var current: String { named ?? RequestFacts.current?.tenant ?? "" }
}
