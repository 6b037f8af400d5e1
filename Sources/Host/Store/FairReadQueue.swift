import Dispatch
import NIOConcurrencyHelpers

/// The SQLite store's reads, run one at a time on its one reading
/// connection, taking turns between tenants (`TenantLines`).
///
/// The next read is queued here, not started by its task: the queue runs
/// it as soon as the last one returns, with no hop in between.
///
/// THREAD: `submit` from any thread; reads run one at a time on `queue`.
final class FairReadQueue: Sendable {
    typealias Read = @Sendable () -> Void

    private struct State {
        var lines = TenantLines<Read>()
        /// A drain is running on `queue`.
        var draining = false
    }

    private let state = NIOLockedValueBox(State())
    private let queue: DispatchQueue

    init(label: String) {
        queue = DispatchQueue(label: label)
    }

    /// Reads queued and not yet begun.
    var waiting: Int { state.withLockedValue { $0.lines.count } }

    /// Queues `read` in the line of `tenant` ("" for the node's own reads).
    func submit(tenant: String, _ read: @escaping Read) {
        let startDrain = state.withLockedValue { state -> Bool in
            state.lines.append(read, for: tenant)
            defer { state.draining = true }
            return !state.draining
        }
        if startDrain { queue.async { self.drain() } }
    }

    private func drain() {
        while let read = next() { read() }
    }

    /// The next read in turn; nil, and the drain ends, when none waits.
    private func next() -> Read? {
        state.withLockedValue { state in
            let read = state.lines.next()
            if read == nil { state.draining = false }
            return read
        }
    }
}
