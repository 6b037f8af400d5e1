import NIOConcurrencyHelpers
import NIOCore

/// Live fan-out inside the process.
///
/// The store calls `publish` after each commit, on its writer queue, so each
/// stream's events reach the live subscribers in `seq` order; `publish` only
/// hands the event off and returns, so the writer goes straight back to
/// committing. Two kinds of subscriber register once they have caught up
/// with the log (until then the log is their source, not memory):
/// - a `LiveSink`, whose connection the host writes to itself: grouped by
///   the connection's event loop, one hop per loop and event (`LoopFanout`);
/// - a `Subscription` with its own queue, read by a task (replays, tests,
///   transports without `frame_event`).
public final class StreamHub: Sendable {
    private struct State {
        var queues: [StreamName: [ObjectIdentifier: Subscription]] = [:]
        /// For each stream, the loops with live sinks on it and how many.
        var loops: [StreamName: [ObjectIdentifier: (fanout: LoopFanout, count: Int)]] = [:]
        /// One fan-out per event loop, made on first use.
        var fanouts: [ObjectIdentifier: LoopFanout] = [:]
        /// Set once the node shuts down: live subscriptions end, new ones end at once.
        var closed = false
    }

    private let state = NIOLockedValueBox(State())
    /// How many live events a queued subscriber may fall behind before it is cut off.
    public let queueLimit: Int
    /// Where delivery latency, cut-offs and gaps are counted (`/metrics`).
    let metrics: Metrics?

    public init(queueLimit: Int = 4096, metrics: Metrics? = nil) {
        self.queueLimit = queueLimit
        self.metrics = metrics
    }

    /// Hands a committed event to the stream's live subscribers.
    public func publish(_ event: StreamEvent) {
        let (queued, fanouts) = state.withLockedValue { state -> ([Subscription], [LoopFanout]) in
            let queued = state.queues[event.stream].map { Array($0.values) } ?? []
            let fanouts = state.loops[event.stream].map { $0.values.map(\.fanout) } ?? []
            return (queued, fanouts)
        }
        for subscription in queued { subscription.live?.push(event) }
        guard !fanouts.isEmpty else { return }
        let live = LiveEvent(event)
        for fanout in fanouts { fanout.publish(live) }
    }

    /// A subscription to `stream` from the event after `after` (0: from the
    /// start). Nothing is read until the subscriber asks for the first item.
    public func subscribe(_ stream: StreamName, after: UInt64, store: any EventStore) -> Subscription {
        Subscription(stream: stream, after: after, store: store, queueLimit: queueLimit,
                     register: { [state] subscription in
                         let open = state.withLockedValue { state in
                             guard !state.closed else { return false }
                             state.queues[stream, default: [:]][ObjectIdentifier(subscription)] = subscription
                             return true
                         }
                         if !open { subscription.live?.finish() }
                     },
                     unregister: { [state] subscription in
                         state.withLockedValue { state in
                             state.queues[stream]?.removeValue(forKey: ObjectIdentifier(subscription))
                             if state.queues[stream]?.isEmpty == true { state.queues[stream] = nil }
                         }
                     })
    }

    /// A subscription whose live events the host writes to `connection`
    /// itself, framed once by `transport` for every subscriber.
    func subscribe(_ stream: StreamName, after: UInt64, store: any EventStore, connection: ConnectionSink,
                   transport: PluginInstance) -> Subscription {
        let ending = LiveEnding()
        let metrics = self.metrics
        let sink = LiveSink(stream: stream, after: after, connection: connection, transport: transport,
                            onEnd: { end in
                                if case .cutOff = end {
                                    metrics?.increment("northstar_slow_consumer_cutoffs_total", [("transport", transport.name)])
                                }
                                ending.signal(end)
                            })
        return Subscription(stream: stream, after: after, store: store, sink: sink, ending: ending,
                            register: { [self] _ in if !attach(sink) { ending.signal(.shutdown) } },
                            goLive: { [self] in goLive($0) },
                            unregister: { [self] _ in detach(sink) })
    }

    /// Registers a sink for its stream's live events, which wait in it until
    /// `goLive`. False once the node is shutting down.
    func attach(_ sink: LiveSink) -> Bool {
        state.withLockedValue { state in
            guard !state.closed else { return false }
            let loop = ObjectIdentifier(sink.eventLoop)
            let fanout = state.fanouts[loop] ?? LoopFanout(loop: sink.eventLoop, metrics: metrics)
            state.fanouts[loop] = fanout
            state.loops[sink.stream, default: [:]][loop, default: (fanout, 0)].count += 1
            // Posted under the lock: no event published after this can reach the loop before it.
            fanout.add(sink)
            return true
        }
    }

    /// The sink's subscriber has read the log up to its position: live from now on.
    func goLive(_ sink: LiveSink) {
        state.withLockedValue { $0.fanouts[ObjectIdentifier(sink.eventLoop)] }?.goLive(sink)
    }

    /// Forgets a sink. Idempotent per sink only through its owner: call once.
    func detach(_ sink: LiveSink) {
        state.withLockedValue { state in
            let loop = ObjectIdentifier(sink.eventLoop)
            guard let entry = state.loops[sink.stream]?[loop] else { return }
            if entry.count <= 1 {
                state.loops[sink.stream]?.removeValue(forKey: loop)
                if state.loops[sink.stream]?.isEmpty == true { state.loops[sink.stream] = nil }
            } else {
                state.loops[sink.stream]?[loop]?.count = entry.count - 1
            }
            entry.fanout.remove(sink)
        }
    }

    /// Ends every live subscription (their subscribers see the end of the
    /// sequence) and every one that would go live later: at shutdown, so
    /// long-lived streams let the listener drain.
    public func shutdown() {
        let (queued, fanouts) = state.withLockedValue { state -> ([Subscription], [LoopFanout]) in
            state.closed = true
            defer { state.queues = [:]; state.loops = [:] }
            return (state.queues.values.flatMap(\.values), Array(state.fanouts.values))
        }
        queued.forEach { $0.live?.finish() }
        fanouts.forEach { $0.shutdown() }
    }

    /// How many live subscribers there are, over all streams (for metrics).
    public var totalSubscribers: Int {
        state.withLockedValue { state in
            state.queues.values.reduce(0) { $0 + $1.count } + state.loops.values.reduce(0) { $0 + $1.values.reduce(0) { $0 + $1.count } }
        }
    }

    /// How many streams have a live subscriber now (for metrics).
    public var streamsWithSubscribers: Int {
        state.withLockedValue { state in Set(state.queues.keys).union(state.loops.keys).count }
    }

    /// How many live subscribers a stream has (for metrics and tests).
    public func subscriberCount(_ stream: StreamName) -> Int {
        state.withLockedValue { state in
            (state.queues[stream]?.count ?? 0) + (state.loops[stream]?.values.reduce(0) { $0 + $1.count } ?? 0)
        }
    }
}
