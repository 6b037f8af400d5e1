import NIOConcurrencyHelpers
import Synchronization

/// What a subscriber receives, in order.
public enum SubscriptionItem: Sendable, Equatable {
    /// The next event of the stream.
    case event(StreamEvent)
    /// The log no longer holds events after `requestedAfter`: the subscriber
    /// continues from `firstSeq`, and should re-read the resource to fill the gap.
    case gap(requestedAfter: UInt64, firstSeq: UInt64)
    /// The subscriber fell too far behind live events and was cut off; it
    /// should reconnect from `lastDeliveredSeq`. Always the last item.
    case overflow(lastDeliveredSeq: UInt64)
    /// Caught up: from now on the host writes live events to the
    /// subscriber's connection itself (only for a subscription with a
    /// `LiveSink`); `whenLiveEnds` tells how that ends. The last item.
    case live
}

/// A transport could not frame a live event: the subscription ends.
struct UnframeableEvent: Error {
    let seq: UInt64
}

/// One subscriber's view of a stream: first a catch-up read from the log at
/// the subscriber's own pace, then live events.
///
/// The catch-up reads pages only as the subscriber asks for them, so a
/// subscriber far behind holds one page in memory, not the whole backlog.
/// When a read comes back empty the subscription registers for live events,
/// reads the log once more (events committed in between are in both), and
/// from then on every event is delivered only if its `seq` is above the last
/// one delivered: nothing is lost at the seam and nothing is doubled.
///
/// Live events come one of two ways: through this subscription's own queue
/// (`next` hands them out), or, with a `LiveSink`, written by the host
/// straight to the subscriber's connection; `next` then only waits for the
/// end of live delivery, and the sink applies the same rule at the seam.
public final class Subscription: AsyncSequence, Sendable {
    public typealias Element = SubscriptionItem

    private enum Phase { case catchingUp, draining, live, ended }

    private struct Cursor {
        var lastDelivered: UInt64
        var buffer: [SubscriptionItem] = []
        var bufferHead = 0
        var phase = Phase.catchingUp
        /// `.live` was handed out: the reader follows the end through `whenLiveEnds`.
        var handedOff = false
        /// Runs when the catch-up is done (`whenCaughtUp`).
        var caughtUp: (@Sendable () -> Void)?
    }

    public let stream: StreamName
    private let store: any EventStore
    private let register: @Sendable (Subscription) -> Void
    private let unregister: @Sendable (Subscription) -> Void
    /// Live events for the subscriber to take; nil when a sink writes them.
    let live: LiveQueue?
    /// Set when the host writes live events to the connection itself.
    let sink: LiveSink?
    private let ending: LiveEnding?
    private let goLive: (@Sendable (LiveSink) -> Void)?
    private let cursor: NIOLockedValueBox<Cursor>
    /// A catch-up page: at most this many events, and no more once they hold
    /// `pageBytes` of JSON (one connection's share, like its send queue).
    private let pageSize = 256
    private let pageBytes = 256 << 10

    init(stream: StreamName, after: UInt64, store: any EventStore, queueLimit: Int,
         register: @escaping @Sendable (Subscription) -> Void, unregister: @escaping @Sendable (Subscription) -> Void) {
        self.stream = stream
        self.store = store
        self.register = register
        self.unregister = unregister
        live = LiveQueue(limit: queueLimit)
        sink = nil
        ending = nil
        goLive = nil
        cursor = NIOLockedValueBox(Cursor(lastDelivered: after))
    }

    /// A subscription whose live events `sink` writes; `register` attaches it
    /// (and reports `.shutdown` through `ending` when it cannot).
    init(stream: StreamName, after: UInt64, store: any EventStore, sink: LiveSink, ending: LiveEnding,
         register: @escaping @Sendable (Subscription) -> Void, goLive: @escaping @Sendable (LiveSink) -> Void,
         unregister: @escaping @Sendable (Subscription) -> Void) {
        self.stream = stream
        self.store = store
        self.register = register
        self.unregister = unregister
        self.sink = sink
        self.ending = ending
        self.goLive = goLive
        live = nil  // an open stream holds no queue it never uses
        cursor = NIOLockedValueBox(Cursor(lastDelivered: after))
    }

    /// The `seq` of the last event handed to the subscriber (or, once live
    /// through a sink, written to its connection).
    public var lastDeliveredSeq: UInt64 {
        let (phase, last) = cursor.withLockedValue { ($0.phase, $0.lastDelivered) }
        if let sink, phase == .live || phase == .ended { return Swift.max(last, sink.position.load(ordering: .relaxed)) }
        return last
    }

    /// The next item; nil once the subscription has ended. Call from one task.
    /// - Throws: when the log cannot be read during the catch-up.
    public func next() async throws -> SubscriptionItem? {
        while true {
            if let item = takeBuffered() { return item }
            let (phase, after) = cursor.withLockedValue { ($0.phase, $0.lastDelivered) }
            switch phase {
            case .ended:
                return nil
            case .catchingUp, .draining:
                let page = try await store.events(stream: stream, after: after, limit: pageSize, maxBytes: pageBytes)
                if after + 1 < page.firstSeq {
                    cursor.withLockedValue { $0.lastDelivered = page.firstSeq - 1 }
                    return .gap(requestedAfter: after, firstSeq: page.firstSeq)
                }
                if !page.events.isEmpty {
                    cursor.withLockedValue {
                        $0.buffer = page.events.map(SubscriptionItem.event)
                        $0.bufferHead = 0
                    }
                } else if phase == .catchingUp {
                    cursor.withLockedValue { $0.phase = .draining }
                    register(self)
                } else {
                    let (live, caughtUp) = cursor.withLockedValue { cursor -> (Bool, (@Sendable () -> Void)?) in
                        guard cursor.phase == .draining else { return (false, nil) }
                        cursor.phase = .live
                        return (true, cursor.caughtUp)
                    }
                    caughtUp?()
                    if live, let sink, let goLive {
                        // Everything up to here came from the log: the sink writes what is after it.
                        sink.position.store(after, ordering: .relaxed)
                        goLive(sink)
                    }
                }
            case .live:
                if let ending {
                    let handOff = cursor.withLockedValue { cursor -> Bool in
                        defer { cursor.handedOff = true }
                        return !cursor.handedOff
                    }
                    if handOff { return .live }
                    let reason = await ending.wait()
                    end()
                    switch reason {
                    case .cutOff: return .overflow(lastDeliveredSeq: lastDeliveredSeq)
                    case .shutdown: return nil
                    case .unframeable(let seq): throw UnframeableEvent(seq: seq)
                    }
                }
                switch await live?.next() {
                case .event(let event)?:
                    let fresh = cursor.withLockedValue { cursor -> Bool in
                        guard event.seq > cursor.lastDelivered else { return false }
                        cursor.lastDelivered = event.seq
                        return true
                    }
                    if fresh { return .event(event) }
                case .overflow?:
                    end()
                    return .overflow(lastDeliveredSeq: lastDeliveredSeq)
                case nil:
                    end()
                    return nil
                }
            }
        }
    }

    /// Runs `action` once, on the reader's task, when the catch-up is done
    /// and the subscription turns live: after the last event read from the
    /// log, before the first live one (and before the host writes any to a
    /// sink). Set it before the first `next()`.
    func whenCaughtUp(_ action: @escaping @Sendable () -> Void) {
        cursor.withLockedValue { $0.caughtUp = action }
    }

    /// After `.live`: runs `action` once, when the host's live delivery ends.
    func whenLiveEnds(_ action: @escaping @Sendable (LiveSink.End) -> Void) {
        ending?.whenEnded { [self] reason in
            end()
            action(reason)
        }
    }

    /// Ends the subscription: no more items, the hub forgets it. Idempotent.
    public func cancel() {
        end()
        live?.finish()
        sink?.cancel()
        ending?.signal(.shutdown)
    }

    private func end() {
        let wasRegistered = cursor.withLockedValue { cursor -> Bool in
            defer { cursor.phase = .ended; cursor.buffer = []; cursor.bufferHead = 0 }
            return cursor.phase == .draining || cursor.phase == .live
        }
        if wasRegistered { unregister(self) }
    }

    /// Pops a buffered catch-up item, skipping what was already delivered.
    private func takeBuffered() -> SubscriptionItem? {
        cursor.withLockedValue { cursor in
            while cursor.bufferHead < cursor.buffer.count {
                let item = cursor.buffer[cursor.bufferHead]
                cursor.bufferHead += 1
                guard case .event(let event) = item else { return item }
                if event.seq > cursor.lastDelivered {
                    cursor.lastDelivered = event.seq
                    return item
                }
            }
            return nil
        }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let subscription: Subscription
        public mutating func next() async throws -> SubscriptionItem? { try await subscription.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(subscription: self) }
}
