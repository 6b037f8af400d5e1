import NIOConcurrencyHelpers
import NIOCore
import NIOWebSocket

/// Everything one streaming connection (an SSE response, a WebSocket)
/// sends, in the order it was sent, written straight to the socket on the
/// connection's event loop.
///
/// Two kinds of writers share it: a transport's own writes
/// (`response_write`, `websocket_send`) from any thread, and live events,
/// which the loop's fan-out writes directly (framed once for every
/// connection). Whatever cannot go to the socket now waits in one ordered
/// queue: before the connection is open (the response head or the 101 is
/// not out yet), behind an earlier write, or while the socket is full (a
/// client that reads slowly). The loop drains it as the socket takes more.
///
/// Memory is bounded by `limit`, counting every byte framed and not yet
/// handed to the kernel: NIO holds at most `socketShare` of it, the queue
/// the rest; one write larger than the limit (a large event) is still taken
/// while the queue is at most half full. A connection whose queue would
/// pass that is cut off: the live
/// events waiting in the queue are dropped (whole frames, never begun; each
/// subscription's position goes back to the last event really sent), and
/// only a short last word may follow (`stream.end`, a 4008 close), written
/// past the limit. When the stream then finishes, the socket closes once
/// that last word has left, or after `grace`. Until then a cut-off
/// connection holds next to nothing of its own: a client that reads again
/// within the grace reads its events, then where to resume.
///
/// THREAD: any; the methods marked "on the loop" only on `channel.eventLoop`.
final class ConnectionSink: @unchecked Sendable {
    enum EnqueueResult { case queued, full, closed }
    enum LiveWrite { case written, overLimit, closed }

    private enum Item {
        /// A transport's write: framed here, on its own.
        case payload(ByteBuffer, WebSocketOpcode)
        /// A live event: framed once for every connection of its transport.
        case event(LiveEvent, PluginInstance, LiveSink)
        /// Bytes already framed (a WebSocket close frame).
        case framed(ByteBuffer)
        /// Runs once everything before it was handed to the socket.
        case then(@Sendable () -> Void)

        var size: Int {
            switch self {
            case .payload(let bytes, _), .framed(let bytes): bytes.readableBytes
            case .event(let event, _, _): event.size
            case .then: 0
            }
        }
    }

    private struct State {
        var queue: [Item] = []
        var queuedBytes = 0
        var drainScheduled = false
        /// nil until the connection is open.
        var framing: StreamFraming?
        /// Nothing more is taken: the stream finished, or the socket is gone.
        var ended = false
        /// The socket closed.
        var gone = false
        var cutOff = false
        /// Bytes a cut-off stream may still send: its last word.
        var lastWordBytes = 4096
        var onGone: (@Sendable () -> Void)?
        /// Catch-ups waiting for the queue to shrink (`waitForRoom`), by ticket.
        var roomWaiters: [Int: CheckedContinuation<Bool, Never>] = [:]
        var nextTicket = 0
    }

    let channel: any Channel
    /// Bytes framed and not yet handed to the kernel that the connection may hold.
    let limit: Int
    /// How much of `limit` NIO may hold (its high water mark); the queue holds the rest.
    let socketShare: Int
    /// How long a client that stopped reading is waited for: a cut-off
    /// connection, for its last word to be read; a catch-up, for room in
    /// the queue (`limits.slow_consumer_grace_seconds`).
    let grace: TimeAmount

    private let state = NIOLockedValueBox(State())
    // On the loop only:
    private var writer: DirectWriter?
    private var needsFlush = false

    init(channel: any Channel, limit: Int, grace: TimeAmount) {
        self.channel = channel
        self.limit = limit
        self.grace = grace
        socketShare = max(4096, limit / 4)
    }

    var eventLoop: any EventLoop { channel.eventLoop }

    /// Bytes framed and waiting in the queue now, behind what NIO holds
    /// (at most `socketShare`): a client that reads slowly has some.
    var queuedBytes: Int { state.withLockedValue { $0.queuedBytes } }

    /// Runs `action` once if the socket closes before the stream finished
    /// (the client left); at once if it already has.
    func whenGone(_ action: @escaping @Sendable () -> Void) {
        let gone = state.withLockedValue { state -> Bool in
            if !state.gone { state.onGone = action }
            return state.gone
        }
        if gone { action() }
    }

    // MARK: Writes from the transport (any thread)

    /// Queues a transport's write. `.full` when the connection holds its
    /// limit already (the transport should end the stream; its last word
    /// still goes out), `.closed` once the connection is gone or finished.
    func enqueue(_ bytes: ByteBuffer, opcode: WebSocketOpcode = .text) -> EnqueueResult {
        let (result, schedule) = state.withLockedValue { state -> (EnqueueResult, Bool) in
            guard !state.ended else { return (.closed, false) }
            if state.cutOff {
                guard bytes.readableBytes <= state.lastWordBytes else { return (.full, false) }
                state.lastWordBytes -= bytes.readableBytes
            } else if !admits(bytes.readableBytes, state) {
                cut(&state)
                return (.full, false)
            }
            state.queue.append(.payload(bytes, opcode))
            state.queuedBytes += bytes.readableBytes
            return (.queued, Self.claimDrain(&state))
        }
        if schedule { eventLoop.execute { self.drain() } }
        return result
    }

    /// Queues a frame already made for the wire, past the limit (a close frame).
    func enqueueFramed(_ bytes: ByteBuffer) {
        let schedule = state.withLockedValue { state -> Bool in
            guard !state.ended else { return false }
            state.queue.append(.framed(bytes))
            return Self.claimDrain(&state)
        }
        if schedule { eventLoop.execute { self.drain() } }
    }

    /// Runs `action` on the loop once everything queued before it was
    /// handed to the socket (or dropped, if the socket is gone).
    func afterQueued(_ action: @escaping @Sendable () -> Void) {
        let schedule = state.withLockedValue { state -> Bool? in
            guard !state.gone, state.framing != nil || !state.queue.isEmpty else { return nil }
            state.queue.append(.then(action))
            return Self.claimDrain(&state)
        }
        switch schedule {
        case nil: eventLoop.execute(action)
        case true?: eventLoop.execute { self.drain() }
        case false?: break
        }
    }

    /// The queued bytes, whole, for an exchange that never opened (a refused
    /// WebSocket handshake's answer); the sink takes nothing more.
    func takeQueued(maxBytes: Int) -> ByteBuffer {
        state.withLockedValue { state in
            var body = ByteBuffer()
            for case .payload(var bytes, _) in state.queue where body.readableBytes < maxBytes { body.writeBuffer(&bytes) }
            state.queue = []
            state.queuedBytes = 0
            state.ended = true
            return body
        }
    }

    /// Whether the queue takes `size` more bytes: while they fit under the
    /// limit, and also while the queue is at most `pauseMark` full, so that
    /// an event larger than the limit itself (events carry up to a request
    /// body) still goes out whole to a client that reads. Held is then at
    /// most half the queue's share and that one write; a client that stops
    /// reading is cut off at the write after it.
    private func admits(_ size: Int, _ state: State) -> Bool {
        state.queuedBytes + size <= limit - socketShare || state.queuedBytes <= pauseMark
    }

    // MARK: Catch-up pacing (any thread)

    /// A catch-up writes a backlog as fast as the log reads, which is faster
    /// than any socket: it waits while the queue holds more than this, so a
    /// client that reads is paced, never cut off as a slow consumer.
    private var pauseMark: Int { (limit - socketShare) / 2 }
    /// ...and goes on once the queue is down to this.
    private var resumeMark: Int { (limit - socketShare) / 8 }

    /// Returns true at once while the queue has room, else once the client
    /// has read it down (or the connection ended); false when it has not
    /// read for `timeout`: a slow consumer.
    func waitForRoom(timeout: TimeAmount) async -> Bool {
        let mark = pauseMark
        if state.withLockedValue({ $0.ended || $0.queuedBytes <= mark }) { return true }
        return await withCheckedContinuation { continuation in
            let ticket = state.withLockedValue { state -> Int? in
                guard !state.ended, state.queuedBytes > mark else { return nil }
                state.nextTicket += 1
                state.roomWaiters[state.nextTicket] = continuation
                return state.nextTicket
            }
            guard let ticket else { return continuation.resume(returning: true) }
            eventLoop.scheduleTask(in: timeout) { [state] in
                state.withLockedValue { $0.roomWaiters.removeValue(forKey: ticket) }?.resume(returning: false)
            }
        }
    }

    /// The catch-ups to wake now that the queue shrank or the connection ended (take under the lock).
    private func roomMade(_ state: inout State) -> [CheckedContinuation<Bool, Never>] {
        guard !state.roomWaiters.isEmpty, state.ended || state.cutOff || state.queuedBytes <= resumeMark else { return [] }
        defer { state.roomWaiters = [:] }
        return Array(state.roomWaiters.values)
    }

    // MARK: The connection's side (on the loop)

    /// Watches the socket before the connection opens (on the loop): a
    /// client that leaves while its answer is still being decided is gone at
    /// once, not when something is first written to it.
    func watchConnection() {
        eventLoop.assertInEventLoop()
        guard state.withLockedValue({ !$0.ended }) else { return }
        writer = try? channel.pipeline.syncOperations.handler(type: DirectWriter.self)
        guard let writer, channel.isActive else { return connectionClosed() }
        writer.sink = self
    }

    /// Stops watching a connection that never opened (its exchange got no
    /// answer, or a refused handshake's): the next request's sink watches it.
    func stopWatching() {
        eventLoop.execute { [self] in
            if let writer, writer.sink === self { writer.sink = nil }
        }
    }

    /// Opens the connection for writing, with `framing`; what was queued goes out now.
    func open(framing: StreamFraming) {
        eventLoop.assertInEventLoop()
        writer = try? channel.pipeline.syncOperations.handler(type: DirectWriter.self)
        guard let writer, channel.isActive else { return connectionClosed() }
        writer.sink = self
        // NIO holds at most its share; past it the socket is unwritable and the queue takes over.
        try? channel.syncOptions?.setOption(ChannelOptions.writeBufferWaterMark,
                                            value: .init(low: socketShare / 2, high: socketShare))
        let drain = state.withLockedValue { state -> Bool in
            guard !state.gone else { return false }
            state.framing = framing
            state.drainScheduled = true
            return true
        }
        if drain { self.drain() }
    }

    /// Writes a live event, framed once for all (on the loop). `.overLimit`:
    /// the connection is its limit behind, and the stream is cut off.
    func writeLive(_ frames: inout BatchFrames, transport: PluginInstance, for sink: LiveSink) -> LiveWrite {
        enum Route { case refuse(LiveWrite), direct(StreamFraming), queued(schedule: Bool) }
        let writable = writer?.isWritable ?? false
        let event = frames.event
        let route = state.withLockedValue { state -> Route in
            guard !state.ended else { return .refuse(.closed) }
            guard !state.cutOff else { return .refuse(.overLimit) }
            if let framing = state.framing, state.queue.isEmpty, writable { return .direct(framing) }
            // Not open yet, behind a transport's write, or the socket is full: in order, later.
            guard admits(event.size, state) else {
                cut(&state)
                return .refuse(.overLimit)
            }
            state.queue.append(.event(event, transport, sink))
            state.queuedBytes += event.size
            // Counted as delivered under the lock, so a cut-off that drops it rewinds it.
            sink.position.store(event.seq, ordering: .relaxed)
            return .queued(schedule: writable && Self.claimDrain(&state))
        }
        switch route {
        case .refuse(let outcome):
            return outcome
        case .queued(let schedule):
            if schedule { eventLoop.execute { self.drain() } }
            return .written
        case .direct(let framing):
            guard let writer else { return .closed }
            if framing != .none, let bytes = frames.bytes(for: transport, framing: framing) { writer.write(bytes) }
            sink.position.store(event.seq, ordering: .relaxed)
            needsFlush = true
            return .written
        }
    }

    /// Flushes what `writeLive` wrote since the last flush: one write per
    /// connection per batch of events.
    func flushIfNeeded() {
        guard needsFlush else { return }
        needsFlush = false
        writer?.flush()
    }

    /// The socket takes more again (on the loop): what waits goes out.
    func becameWritable() {
        let schedule = state.withLockedValue { state in !state.queue.isEmpty && Self.claimDrain(&state) }
        if schedule { drain() }
    }

    /// Ends the stream: nothing is taken after what is queued now. A cut-off
    /// connection then closes once its last word has left, or after
    /// `grace`. `action` runs on the loop after the queue was written.
    func finish(then action: @escaping @Sendable () -> Void) {
        afterQueued { [self] in
            let (cut, paced) = state.withLockedValue { state -> (Bool, [CheckedContinuation<Bool, Never>]) in
                state.ended = true
                state.onGone = nil
                return (state.cutOff && !state.gone, roomMade(&state))
            }
            paced.forEach { $0.resume(returning: true) }
            writer?.sink = nil
            if cut { closeWhenWritten() }
            action()
        }
    }

    /// Closes the socket once what was written has left, or after the grace.
    private func closeWhenWritten() {
        let channel = self.channel
        let written = channel.eventLoop.makePromise(of: Void.self)
        // An empty write completes after every write before it has left.
        if let writer { writer.write(ByteBuffer(), promise: written); writer.flush() } else { written.succeed() }
        written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        let deadline = channel.eventLoop.scheduleTask(in: grace) { channel.close(promise: nil) }
        channel.closeFuture.whenComplete { _ in deadline.cancel() }
    }

    /// The socket closed: nothing more is written, and the owner is told once.
    func connectionClosed() {
        let (action, waiting, paced) = state.withLockedValue { state -> ((@Sendable () -> Void)?, [@Sendable () -> Void], [CheckedContinuation<Bool, Never>]) in
            defer { state.gone = true; state.ended = true; state.queue = []; state.queuedBytes = 0; state.onGone = nil }
            // Whoever waits for the queue to be written is released: it never will be.
            let waiting = state.queue.compactMap { item -> (@Sendable () -> Void)? in
                if case .then(let action) = item { return action }
                return nil
            }
            let paced = Array(state.roomWaiters.values)
            state.roomWaiters = [:]
            return (state.gone ? nil : state.onGone, waiting, paced)
        }
        writer = nil
        action?()
        waiting.forEach { $0() }
        paced.forEach { $0.resume(returning: true) }
    }

    // MARK: Cut-off and draining

    /// Whether the stream was cut off (its socket then closes on its own schedule).
    var isCutOff: Bool { state.withLockedValue { $0.cutOff } }

    /// Cuts the stream off (a subscription fell its limit behind before it went live).
    func cutOff() {
        let paced = state.withLockedValue { state in
            cut(&state)
            return roomMade(&state)
        }
        paced.forEach { $0.resume(returning: true) }
    }

    /// Cuts the stream off: the live events waiting are dropped, and each
    /// subscription whose events were dropped goes back to the last one sent.
    private func cut(_ state: inout State) {
        state.cutOff = true
        state.queue.removeAll { item in
            guard case .event(let event, _, let sink) = item else { return false }
            sink.rewind(toBefore: event.seq)
            state.queuedBytes -= event.size
            return true
        }
    }

    /// Claims the one drain task a non-empty queue needs (none before the connection is open).
    private static func claimDrain(_ state: inout State) -> Bool {
        guard state.framing != nil, !state.drainScheduled else { return false }
        state.drainScheduled = true
        return true
    }

    /// Writes what is queued, in order, while the socket takes it (all of it
    /// once cut off: only a short last word is left), then flushes once.
    private func drain() {
        let (items, framing, cutOff) = state.withLockedValue { state -> ([Item], StreamFraming?, Bool) in
            defer { state.queue = []; state.queuedBytes = 0; state.drainScheduled = false }
            return (state.queue, state.framing, state.cutOff)
        }
        guard let framing else { return }
        var index = 0
        while index < items.count, cutOff || (writer?.isWritable ?? true) {
            switch items[index] {
            case .payload(let bytes, let opcode):
                if framing != .none { writer?.write(framing.wrap(bytes, opcode: opcode)) }
            case .event(let event, let transport, _):
                if framing != .none { writer?.write(event.framed(by: transport, as: framing)) }
            case .framed(let bytes):
                writer?.write(bytes)
            case .then(let action):
                writer?.flush()
                action()
            }
            index += 1
        }
        writer?.flush()
        needsFlush = false
        // The socket is full: the rest waits, ahead of anything queued since.
        let rest = items[index...]
        let (dropped, paced) = state.withLockedValue { state -> (Bool, [CheckedContinuation<Bool, Never>]) in
            guard !state.gone else { return (true, []) }
            state.queue = Array(rest) + state.queue
            state.queuedBytes += rest.reduce(0) { $0 + $1.size }
            return (false, roomMade(&state))
        }
        paced.forEach { $0.resume(returning: true) }
        if dropped { rest.forEach { if case .then(let action) = $0 { action() } } }
        // The flush above may have emptied NIO's buffer, and told us so while
        // the rest was not back in the queue yet: that news would be lost, and
        // the rest would wait for a writability change that never comes.
        if !dropped, !rest.isEmpty, writer?.isWritable == true { eventLoop.execute { self.becameWritable() } }
    }
}
