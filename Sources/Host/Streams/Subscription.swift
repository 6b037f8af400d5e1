import NIOConcurrencyHelpers

/// What a subscriber receives, in order.
public enum SubscriptionItem: Sendable, Equatable {
    /// The next event of the stream.
    case event(StreamEvent)
    /// The log no longer holds events after `requestedAfter`: the subscriber
    /// continues from `firstSeq`, and should refetch state to fill the gap.
    case gap(requestedAfter: UInt64, firstSeq: UInt64)
    /// The subscriber fell `limit` events behind and was cut off; it should
    /// reconnect from the last `seq` it processed. Always the last item.
    case overflow(lastDeliveredSeq: UInt64)
}

/// One subscriber's bounded queue, consumed as an `AsyncSequence`.
///
/// The producer (the hub, on the store's writer queue) never blocks and the
/// queue never grows past `limit`: a subscriber that stops reading is ended
/// with `.overflow` instead of holding the server's memory.
public final class Subscription: AsyncSequence, Sendable {
    public typealias Element = SubscriptionItem

    private struct State {
        var queue: [SubscriptionItem] = []
        var head = 0
        var waiter: CheckedContinuation<SubscriptionItem?, Never>?
        var finished = false
        var lastQueuedSeq: UInt64
    }

    private let state: NIOLockedValueBox<State>
    private let limit: Int
    let onCancel: @Sendable () -> Void

    init(after: UInt64, limit: Int, onCancel: @escaping @Sendable () -> Void) {
        state = NIOLockedValueBox(State(lastQueuedSeq: after))
        self.limit = limit
        self.onCancel = onCancel
    }

    /// Queues an item; past the limit the queue is replaced by `.overflow`.
    /// - Returns: false once the subscription has ended.
    @discardableResult
    func push(_ item: SubscriptionItem) -> Bool {
        let (resume, value, ended): (CheckedContinuation<SubscriptionItem?, Never>?, SubscriptionItem?, Bool) = state.withLockedValue { state in
            guard !state.finished else { return (nil, nil, true) }
            if case .event(let event) = item { state.lastQueuedSeq = event.seq }
            if let waiter = state.waiter {
                state.waiter = nil
                if case .overflow = item { state.finished = true }
                return (waiter, item, false)
            }
            if state.queue.count - state.head >= limit {
                // Everything queued is dropped: the client resumes from what it processed.
                let delivered = state.queue[state.head...].first.flatMap { item -> UInt64? in
                    if case .event(let event) = item { return event.seq - 1 }
                    return nil
                } ?? state.lastQueuedSeq
                state.queue = [.overflow(lastDeliveredSeq: delivered)]
                state.head = 0
                state.finished = true
                return (nil, nil, true)
            }
            state.queue.append(item)
            if case .overflow = item { state.finished = true }
            return (nil, nil, false)
        }
        resume?.resume(returning: value)
        if ended { onCancel() }
        return !ended
    }

    /// The `seq` of the last event queued (or the starting point).
    var lastQueuedSeq: UInt64 { state.withLockedValue { $0.lastQueuedSeq } }

    /// Ends the subscription: no more items, the hub forgets it. Idempotent.
    public func cancel() {
        let waiter = state.withLockedValue { state -> CheckedContinuation<SubscriptionItem?, Never>? in
            state.finished = true
            state.queue = []
            state.head = 0
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
        onCancel()
    }

    /// Waits for the next item; nil once the subscription has ended.
    public func next() async -> SubscriptionItem? {
        await withCheckedContinuation { continuation in
            let ready: SubscriptionItem?? = state.withLockedValue { state in
                if state.head < state.queue.count {
                    let item = state.queue[state.head]
                    state.head += 1
                    if state.head > 1024, state.head * 2 > state.queue.count {
                        state.queue.removeFirst(state.head)
                        state.head = 0
                    }
                    return .some(item)
                }
                if state.finished { return .some(nil) }
                state.waiter = continuation
                return .none
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let subscription: Subscription
        public mutating func next() async -> SubscriptionItem? { await subscription.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(subscription: self) }
}
