import NIOConcurrencyHelpers

/// A live subscriber's bounded queue, filled by the hub on the store's
/// writer queue and drained by the subscriber.
///
/// The producer never blocks and the queue never grows past `limit`: when a
/// subscriber stops reading, its queue is dropped and it ends with an
/// overflow, instead of holding the server's memory.
final class LiveQueue: Sendable {
    enum Item: Sendable {
        case event(StreamEvent)
        case overflow
    }

    private struct State {
        var queue: [StreamEvent] = []
        var head = 0
        var waiter: CheckedContinuation<Item?, Never>?
        var overflowed = false
        var finished = false
    }

    private let state = NIOLockedValueBox(State())
    private let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    /// Queues an event. Returns false when the queue has ended (overflow or cancel).
    @discardableResult
    func push(_ event: StreamEvent) -> Bool {
        let (waiter, item, accepted): (CheckedContinuation<Item?, Never>?, Item?, Bool) = state.withLockedValue { state in
            guard !state.finished else { return (nil, nil, false) }
            if let waiter = state.waiter {
                state.waiter = nil
                return (waiter, .event(event), true)
            }
            guard state.queue.count - state.head < limit else {
                state.queue = []
                state.head = 0
                state.overflowed = true
                state.finished = true
                return (nil, nil, false)
            }
            state.queue.append(event)
            return (nil, nil, true)
        }
        waiter?.resume(returning: item)
        return accepted
    }

    /// Ends the queue; a waiting reader gets nil. Idempotent.
    func finish() {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Item?, Never>? in
            state.finished = true
            state.queue = []
            state.head = 0
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    /// The next event, `.overflow` once if the reader fell too far behind,
    /// or nil when the queue has ended.
    func next() async -> Item? {
        // A reader that is behind takes what is queued without suspending.
        if let ready = state.withLockedValue({ Self.take(&$0) }) { return ready }
        return await withCheckedContinuation { continuation in
            let ready: Item?? = state.withLockedValue { state in
                if let ready = Self.take(&state) { return .some(ready) }
                state.waiter = continuation
                return .none
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// What is ready now: an event, the overflow, or the end (`.some(nil)`);
    /// nil when the reader must wait.
    private static func take(_ state: inout State) -> Item?? {
        if state.head < state.queue.count {
            let event = state.queue[state.head]
            state.head += 1
            if state.head >= 1024, state.head * 2 >= state.queue.count {
                state.queue.removeFirst(state.head)
                state.head = 0
            }
            return .some(.event(event))
        }
        if state.overflowed {
            state.overflowed = false
            return .some(.overflow)
        }
        if state.finished { return .some(nil) }
        return nil
    }
}
