import NIOConcurrencyHelpers

/// Live fan-out inside the process.
///
/// The store calls `publish` after each commit, on its writer queue, so each
/// stream's events reach the live queues in `seq` order. Subscriptions
/// register themselves once they have caught up with the log (see
/// `Subscription`); until then the log is their source, not memory.
public final class StreamHub: Sendable {
    private let subscribers = NIOLockedValueBox<[StreamName: [ObjectIdentifier: Subscription]]>([:])
    /// Set once the node shuts down: live subscriptions end, new ones end at once.
    private let closed = NIOLockedValueBox(false)
    /// How many live events a subscriber may fall behind before it is cut off.
    public let queueLimit: Int

    public init(queueLimit: Int = 4096) {
        self.queueLimit = queueLimit
    }

    /// Hands a committed event to the stream's live subscribers.
    public func publish(_ event: StreamEvent) {
        let targets = subscribers.withLockedValue { Array(($0[event.stream] ?? [:]).values) }
        for subscription in targets {
            subscription.live.push(event)
        }
    }

    /// A subscription to `stream` from the event after `after` (0: from the
    /// start). Nothing is read until the subscriber asks for the first item.
    public func subscribe(_ stream: StreamName, after: UInt64, store: any EventStore) -> Subscription {
        Subscription(stream: stream, after: after, store: store, queueLimit: queueLimit,
                     register: { [subscribers, closed] subscription in
                         let open = closed.withLockedValue { isClosed in
                             guard !isClosed else { return false }
                             subscribers.withLockedValue { $0[stream, default: [:]][ObjectIdentifier(subscription)] = subscription }
                             return true
                         }
                         if !open { subscription.live.finish() }
                     },
                     unregister: { [subscribers] subscription in
                         subscribers.withLockedValue { all in
                             all[stream]?.removeValue(forKey: ObjectIdentifier(subscription))
                             if all[stream]?.isEmpty == true { all[stream] = nil }
                         }
                     })
    }

    /// Ends every live subscription (their subscribers see the end of the
    /// sequence) and every one that would go live later: at shutdown, so
    /// long-lived streams let the listener drain.
    public func shutdown() {
        let all = closed.withLockedValue { isClosed in
            isClosed = true
            return subscribers.withLockedValue { subscribers in
                defer { subscribers = [:] }
                return subscribers.values.flatMap(\.values)
            }
        }
        all.forEach { $0.live.finish() }
    }

    /// How many live subscribers there are, over all streams (for metrics).
    public var totalSubscribers: Int {
        subscribers.withLockedValue { $0.values.reduce(0) { $0 + $1.count } }
    }

    /// How many live subscribers a stream has (for metrics and tests).
    public func subscriberCount(_ stream: StreamName) -> Int {
        subscribers.withLockedValue { $0[stream]?.count ?? 0 }
    }
}
