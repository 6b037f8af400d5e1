import NIOConcurrencyHelpers
import NIOCore

/// The live subscribers whose connections live on one event loop, and what
/// is on its way to them.
///
/// Everything reaches the loop through one ordered inbox: subscribers
/// joining, going live and leaving, and committed events. One task drains
/// it: each event is written to every subscriber of its stream on this
/// loop, and each connection written to is flushed once at the end, so a
/// burst of events becomes one write per connection.
final class LoopFanout: @unchecked Sendable {
    private enum Message {
        case add(LiveSink)
        case goLive(LiveSink)
        case remove(LiveSink)
        case event(LiveEvent)
        case shutdown
    }

    let loop: any EventLoop
    private let metrics: Metrics?
    private let inbox = NIOLockedValueBox<(messages: [Message], scheduled: Bool)>(([], false))
    // On the loop only:
    private var sinks: [StreamName: StreamSinks] = [:]

    /// One stream's sinks on this loop: an array to write through fast,
    /// and where each sits in it, to remove one at once.
    private final class StreamSinks {
        var list: [LiveSink] = []
        var index: [ObjectIdentifier: Int] = [:]

        func add(_ sink: LiveSink) {
            guard index[ObjectIdentifier(sink)] == nil else { return }
            index[ObjectIdentifier(sink)] = list.count
            list.append(sink)
        }

        func remove(_ sink: LiveSink) {
            guard let at = index.removeValue(forKey: ObjectIdentifier(sink)) else { return }
            let last = list.removeLast()
            if at < list.count {
                list[at] = last
                index[ObjectIdentifier(last)] = at
            }
        }
    }

    init(loop: any EventLoop, metrics: Metrics? = nil) {
        self.loop = loop
        self.metrics = metrics
    }

    func add(_ sink: LiveSink) { post(.add(sink)) }
    func goLive(_ sink: LiveSink) { post(.goLive(sink)) }
    func remove(_ sink: LiveSink) { post(.remove(sink)) }
    func publish(_ event: LiveEvent) { post(.event(event)) }
    func shutdown() { post(.shutdown) }

    private func post(_ message: Message) {
        let schedule = inbox.withLockedValue { inbox -> Bool in
            inbox.messages.append(message)
            defer { inbox.scheduled = true }
            return !inbox.scheduled
        }
        if schedule { loop.execute { self.drain() } }
    }

    // The batch being written (on the loop only).
    private var batch: [Message] = []
    private var batchIndex = 0
    /// The run of events being written: consecutive events of one stream
    /// in the batch, each framed once, and how far through the stream's
    /// subscribers it got.
    private var run: [BatchFrames] = []
    private var runEnd = 0
    private var sinkIndex = 0
    /// The transports written to in the current run (for the latency histogram).
    private var runTransports: [PluginInstance] = []

    /// How many connections one task writes to before it queues the rest
    /// behind the loop's other tasks: a big fan-out goes out in slices, and
    /// what was queued meanwhile (a REST answer being written, a timer)
    /// runs between them. NIO reads sockets only once its task queue is
    /// empty, so new requests on this loop still wait for the whole
    /// fan-out. Each connection gets every event of the run at once, with
    /// one flush.
    static let connectionsPerTurn = 256

    private func drain() {
        if batchIndex >= batch.count {
            batch = inbox.withLockedValue { inbox in
                defer { inbox.messages = [] }
                return inbox.messages
            }
            batchIndex = 0
        }
        var budget = Self.connectionsPerTurn
        while batchIndex < batch.count, budget > 0 {
            switch batch[batchIndex] {
            case .add(let sink):
                let stream = sinks[sink.stream] ?? StreamSinks()
                sinks[sink.stream] = stream
                stream.add(sink)
            case .goLive(let sink):
                sink.goLive()
            case .remove(let sink):
                sinks[sink.stream]?.remove(sink)
                if sinks[sink.stream]?.list.isEmpty == true { sinks[sink.stream] = nil }
            case .event(let first):
                if run.isEmpty { startRun(at: batchIndex, stream: first.event.stream) }
                if let subscribers = sinks[first.event.stream]?.list {
                    while sinkIndex < subscribers.count, budget > 0 {
                        let sink = subscribers[sinkIndex]
                        var wrote = false
                        for index in run.indices {
                            if sink.deliver(&run[index]) { wrote = true }
                        }
                        if wrote {
                            sink.connection.flushIfNeeded()
                            if !runTransports.contains(where: { $0 === sink.transport }) { runTransports.append(sink.transport) }
                        }
                        sinkIndex += 1
                        budget -= 1
                    }
                    if sinkIndex < subscribers.count { continue }  // the rest of the run next turn
                }
                recordLatency()
                batchIndex = runEnd
                run = []
                sinkIndex = 0
                continue
            case .shutdown:
                let all = sinks.values.flatMap(\.list)
                sinks = [:]
                all.forEach { $0.shutdown() }
            }
            batchIndex += 1
        }
        if batchIndex < batch.count {
            loop.execute { self.drain() }
            return
        }
        batch = []
        batchIndex = 0
        let more = inbox.withLockedValue { inbox -> Bool in
            if inbox.messages.isEmpty { inbox.scheduled = false }
            return !inbox.messages.isEmpty
        }
        if more { loop.execute { self.drain() } }
    }

    /// Commit to socket, per event of the run and transport written to: the
    /// time until this loop handed the event to its last connection's socket.
    private func recordLatency() {
        defer { runTransports = [] }
        guard let metrics, !runTransports.isEmpty else { return }
        let now = ContinuousClock.now
        for transport in runTransports {
            for frames in run {
                metrics.record("northstar_delivery_latency_seconds", [("transport", transport.name)], duration: now - frames.event.committedAt)
            }
        }
    }

    /// Gathers the events of `stream` that follow each other from `start`.
    private func startRun(at start: Int, stream: StreamName) {
        var end = start
        while end < batch.count, case .event(let event) = batch[end], event.event.stream == stream {
            run.append(BatchFrames(event))
            end += 1
        }
        runEnd = end
        sinkIndex = 0
    }
}
