import NIOCore
import Synchronization

/// One subscription whose live events the host writes to its connection
/// itself: no task, no queue and no plugin call per event.
///
/// It is registered with the hub while its subscriber still reads the log
/// (`buffering`: live events wait here, bounded by the connection's limit),
/// then `goLive` writes what waited past the last `seq` read and every
/// event after it as it comes. Its state lives on its connection's event
/// loop, where `LoopFanout` calls it.
final class LiveSink: @unchecked Sendable {
    enum End: Sendable {
        /// The connection fell its limit behind: cut off.
        case cutOff
        /// The node is shutting down, or the connection is gone.
        case shutdown
        /// The transport could not frame an event.
        case unframeable(seq: UInt64)
    }

    let stream: StreamName
    let connection: ConnectionSink
    let transport: PluginInstance
    /// The `seq` of the last event delivered (read back from the log, or written live).
    let position: Atomic<UInt64>
    private let cancelled = Atomic<Bool>(false)
    private let onEnd: @Sendable (End) -> Void

    // On the loop only:
    private var live = false
    private var ended = false
    private var waiting: [LiveEvent] = []
    private var waitingBytes = 0

    init(stream: StreamName, after: UInt64, connection: ConnectionSink, transport: PluginInstance,
         onEnd: @escaping @Sendable (End) -> Void) {
        self.stream = stream
        self.connection = connection
        self.transport = transport
        self.onEnd = onEnd
        position = Atomic(after)
    }

    var eventLoop: any EventLoop { connection.eventLoop }

    /// A cut-off dropped the event `seq` before it was sent: the position
    /// goes back to the event before it, where the client resumes.
    func rewind(toBefore seq: UInt64) {
        var current = position.load(ordering: .relaxed)
        while seq - 1 < current {
            let (exchanged, original) = position.compareExchange(expected: current, desired: seq - 1, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }

    /// Stops delivery: nothing is written after the loop takes this in.
    func cancel() { cancelled.store(true, ordering: .releasing) }

    /// A live event for this stream (on the loop). True when it was written
    /// to the connection (which then needs a flush).
    @discardableResult
    func deliver(_ frames: inout BatchFrames) -> Bool {
        guard !ended, !cancelled.load(ordering: .acquiring) else { return false }
        guard live else {
            waiting.append(frames.event)
            waitingBytes += frames.event.size
            if waitingBytes > connection.limit { end(.cutOff) }
            return false
        }
        return write(&frames)
    }

    /// The log has been read up to `position`: from now on, every live event (on the loop).
    func goLive() {
        guard !ended, !cancelled.load(ordering: .acquiring) else { return }
        live = true
        let waited = waiting
        waiting = []
        waitingBytes = 0
        for event in waited where !ended {
            var frames = BatchFrames(event)
            write(&frames)
        }
        connection.flushIfNeeded()
    }

    /// The node is shutting down (on the loop).
    func shutdown() {
        guard !cancelled.load(ordering: .acquiring) else { return }
        end(.shutdown)
    }

    @discardableResult
    private func write(_ frames: inout BatchFrames) -> Bool {
        let seq = frames.event.seq
        // Events up to the position were read back from the log already.
        guard seq > position.load(ordering: .relaxed) else { return false }
        guard frames.bytes(for: transport, framing: .plain) != nil else {
            end(.unframeable(seq: seq))
            return false
        }
        switch connection.writeLive(&frames, transport: transport, for: self) {
        case .written: return true
        case .overLimit: end(.cutOff)
        case .closed: end(.shutdown)
        }
        return false
    }

    private func end(_ reason: End) {
        guard !ended else { return }
        ended = true
        waiting = []
        if case .cutOff = reason { connection.cutOff() }
        onEnd(reason)
    }
}
