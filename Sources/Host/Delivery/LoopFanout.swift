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
    private var sinks: [StreamName: [ObjectIdentifier: LiveSink]] = [:]

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
                sinks[sink.stream, default: [:]][ObjectIdentifier(sink)] = sink
            case .goLive(let sink):
                sink.goLive()
                written.append(sink.stream)
            case .remove(let sink):
                sinks[sink.stream]?.removeValue(forKey: ObjectIdentifier(sink))
                if sinks[sink.stream]?.isEmpty == true { sinks[sink.stream] = nil }
            case .event(let event):
                guard let subscribers = sinks[event.event.stream] else { continue }
                for sink in subscribers.values { sink.deliver(event) }
                if written.last != event.event.stream { written.append(event.event.stream) }
            case .shutdown:
                let all = sinks.values.flatMap(\.values)
                sinks = [:]
                all.forEach { $0.shutdown() }
            }
        }
        // One flush per connection for the whole batch.
        for stream in Set(written) {
            sinks[stream]?.values.forEach { $0.connection.flushIfNeeded() }
        }
    }
}
