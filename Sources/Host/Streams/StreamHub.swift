import Foundation
import NIOConcurrencyHelpers

/// Live fan-out inside the process, with replay from the log first.
///
/// A subscriber is registered for live events *before* the replay reads the
/// log, and every event is handed over only if its `seq` is above the last
/// one queued; so at the seam between replay and live nothing is lost (the
/// live buffer holds what was committed during the replay) and nothing is
/// doubled (the `seq` check drops what both paths saw).
public final class StreamHub: Sendable {
    private final class Subscriber: Sendable {
        let subscription: Subscription
        /// Live events that arrive while the replay is still reading the log.
        let pending = NIOLockedValueBox<(replaying: Bool, events: [StreamEvent])>((true, []))
        init(_ subscription: Subscription) { self.subscription = subscription }
    }

    private let subscribers = NIOLockedValueBox<[StreamName: [ObjectIdentifier: Subscriber]]>([:])
    /// How far behind a subscriber may fall before it is cut off.
    public let queueLimit: Int

    public init(queueLimit: Int = 4096) {
        self.queueLimit = queueLimit
    }

    /// Hands a committed event to the stream's subscribers. Called by the
    /// store after each commit, in commit order.
    public func publish(_ event: StreamEvent) {
        let targets = subscribers.withLockedValue { Array(($0[event.stream] ?? [:]).values) }
        for subscriber in targets {
            let deliverNow = subscriber.pending.withLockedValue { pending -> Bool in
                if pending.replaying { pending.events.append(event) }
                return !pending.replaying
            }
            if deliverNow, event.seq > subscriber.subscription.lastQueuedSeq {
                subscriber.subscription.push(.event(event))
            }
        }
    }

    /// Subscribes to `stream` from the event after `after`: first what the
    /// log holds, then live events, in `seq` order, each once.
    /// - Parameters:
    ///   - store: where the replay reads.
    ///   - after: the last `seq` the subscriber has (0: from the start).
    public func subscribe(_ stream: StreamName, after: UInt64, store: any EventStore) async throws -> Subscription {
        let key = NIOLockedValueBox<ObjectIdentifier?>(nil)
        let subscription = Subscription(after: after, limit: queueLimit) { [subscribers] in
            guard let id = key.withLockedValue({ $0 }) else { return }
            subscribers.withLockedValue { _ = $0[stream]?.removeValue(forKey: id) }
        }
        let subscriber = Subscriber(subscription)
        let id = ObjectIdentifier(subscriber)
        key.withLockedValue { $0 = id }
        subscribers.withLockedValue { $0[stream, default: [:]][id] = subscriber }

        do {
            try await replay(stream, after: after, store: store, into: subscription)
        } catch {
            subscription.cancel()
            throw error
        }
        // Hand over what arrived during the replay, then go live.
        while true {
            let batch = subscriber.pending.withLockedValue { pending -> [StreamEvent] in
                defer { pending.events = [] }
                if pending.events.isEmpty { pending.replaying = false }
                return pending.events
            }
            if batch.isEmpty { break }
            for event in batch where event.seq > subscription.lastQueuedSeq {
                subscription.push(.event(event))
            }
        }
        return subscription
    }

    private func replay(_ stream: StreamName, after: UInt64, store: any EventStore, into subscription: Subscription) async throws {
        var cursor = after
        while true {
            let page = try await store.events(stream: stream, after: cursor, limit: 500)
            if cursor + 1 < page.firstSeq {
                subscription.push(.gap(requestedAfter: cursor, firstSeq: page.firstSeq))
                cursor = page.firstSeq - 1
                continue
            }
            for event in page.events where event.seq > subscription.lastQueuedSeq {
                guard subscription.push(.event(event)) else { return }
            }
            guard let last = page.events.last, last.seq < page.headSeq else { return }
            cursor = last.seq
        }
    }

    /// How many subscribers a stream has (for metrics and tests).
    public func subscriberCount(_ stream: StreamName) -> Int {
        subscribers.withLockedValue { $0[stream]?.count ?? 0 }
    }
}
