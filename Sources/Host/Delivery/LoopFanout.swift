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

    init(loop: any EventLoop) {
        self.loop = loop
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

    private func drain() {
        let messages = inbox.withLockedValue { inbox in
            defer { inbox.messages = []; inbox.scheduled = false }
            return inbox.messages
        }
        var written: [StreamName] = []
        for message in messages {
            switch message {
            case .add(let sink):
                let stream = sinks[sink.stream] ?? StreamSinks()
                sinks[sink.stream] = stream
                stream.add(sink)
            case .goLive(let sink):
                sink.goLive()
                written.append(sink.stream)
            case .remove(let sink):
                sinks[sink.stream]?.remove(sink)
                if sinks[sink.stream]?.list.isEmpty == true { sinks[sink.stream] = nil }
            case .event(let event):
                guard let subscribers = sinks[event.event.stream] else { continue }
                var frames = BatchFrames(event)
                for sink in subscribers.list { sink.deliver(&frames) }
                if written.last != event.event.stream { written.append(event.event.stream) }
            case .shutdown:
                let all = sinks.values.flatMap(\.list)
                sinks = [:]
                all.forEach { $0.shutdown() }
            }
        }
        // One flush per connection for the whole batch.
        for stream in Set(written) {
            sinks[stream]?.list.forEach { $0.connection.flushIfNeeded() }
        }
    }
}
