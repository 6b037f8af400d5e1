import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// One HTTP exchange routed to a transport plugin: the host's side of an
/// `ns_exchange *`.
///
/// The plugin answers when it is ready (after authenticating, after
/// subscribing) with `response_start`, then streams body bytes, which go to
/// the connection's `ConnectionSink` in order with the live events the host
/// writes there itself. A client that does not read fills the sink, and
/// the plugin is told (NS_ERR_TOO_LARGE) to end the exchange instead of the
/// server holding more memory.
///
/// A plugin that misuses the exchange (a bad status, a write before the
/// head, an end without an answer) is named in the log with the route, once
/// per exchange; the client gets the answer the host can still give.
///
/// OWNERSHIP: the plugin holds one reference from `on_request` until it
/// calls `response_end`, which it always does, also after
/// `on_exchange_closed`.
final class Exchange: @unchecked Sendable {
    struct Head: Sendable {
        let status: Int
        let headers: [(String, String)]
    }

    /// What the plugin made of the request: an HTTP answer or a WebSocket.
    enum Decision: Sendable {
        case respond(Head)
        case upgrade(HostWebSocket)
    }

    private struct State {
        var answered = false       // response_start was called
        /// The answer's head, until the connection takes it (an open stream
        /// keeps none of its header strings).
        var head: Head?
        var socket: HostWebSocket?
        var headWaiter: CheckedContinuation<Decision?, Never>?
        /// What runs once the plugin ended the exchange or the client left.
        var whenEnded: [@Sendable () -> Void] = []
        var ended = false          // the plugin called response_end
        var gone = false           // the client went away, or the host gave up
        var pluginHolds = true     // the plugin's reference is still out
        var told = false           // on_exchange_closed was called
        var finished = false       // the connection is done with it
        var misused = false        // a misuse was logged already
        var context: UInt = 0      // the plugin's own state (exchange_set_context)
        var clientLeft = false     // gone because the connection closed
    }

    let plugin: PluginInstance
    /// The route it came in on, as the plugin mounted it (for the log).
    let route: String
    /// Where the answer's bytes go: the connection's own.
    let sink: ConnectionSink
    /// Set for a WebSocket handshake: only then may the plugin accept one.
    let webSocketLimits: WebSocketLimits?
    private let openExchanges: OpenExchanges
    private let state = NIOLockedValueBox(State())
    /// `on_request` and `on_exchange_closed` run inside it: the plugin is
    /// never told its client left before `on_request` returned, nor after
    /// `response_end` returned (which waits for a call in flight).
    private let callbacks = PluginCallbackGate()

    init(plugin: PluginInstance, route: TransportRoute, sink: ConnectionSink, openExchanges: OpenExchanges,
         webSocketLimits: WebSocketLimits? = nil) {
        self.plugin = plugin
        self.route = "\(route.method) \(route.pattern)"
        self.sink = sink
        self.webSocketLimits = webSocketLimits
        self.openExchanges = openExchanges
        sink.whenGone { [weak self] in
            self?.state.withLockedValue { $0.clientLeft = true }
            self?.clientGone()
        }
        // From now on, not only once the answer starts: a client that leaves
        // before the plugin answers is reported to it at once.
        sink.eventLoop.execute { sink.watchConnection() }
    }

    deinit {
        openExchanges.remove(ObjectIdentifier(self))
    }

    /// Counts the exchange among the node's open ones; false while the node
    /// drains past its deadline (the exchange is then refused).
    func register() -> Bool {
        openExchanges.add(self)
    }

    /// The pointer the plugin gets; it keeps this object alive.
    func retainForPlugin() -> OpaquePointer { OpaquePointer(Unmanaged.passRetained(self).toOpaque()) }

    static func from(_ pointer: OpaquePointer?) -> Exchange? {
        guard let pointer else { return nil }
        return Unmanaged<Exchange>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }

    // MARK: The plugin's side (host services)

    enum StartResult { case started, gone, misuse }

    /// `response_start`.
    func start(status: Int, headers: [(String, String)]) -> StartResult {
        guard (200...599).contains(status) else {
            reportMisuse("response_start with status \(status); a response's status is 200 to 599")
            return .misuse
        }
        // A 401 must say how to authenticate (RFC 9110, 15.5.2): the REST
        // API's scheme, unless the plugin named one.
        var headers = headers
        if status == 401, !headers.contains(where: { $0.0.lowercased() == "www-authenticate" }) {
            headers.append(("www-authenticate", "Bearer"))
        }
        enum Outcome { case start(CheckedContinuation<Decision?, Never>?), gone, twice }
        let outcome = state.withLockedValue { state -> Outcome in
            guard !state.gone else { return .gone }
            guard !state.answered, state.socket == nil, !state.ended else { return .twice }
            state.answered = true
            guard let waiter = state.headWaiter else {
                state.head = Head(status: status, headers: headers)
                return .start(nil)
            }
            state.headWaiter = nil
            return .start(waiter)
        }
        switch outcome {
        case .start(let waiter):
            waiter?.resume(returning: .respond(Head(status: status, headers: headers)))
            return .started
        case .gone:
            return .gone
        case .twice:
            reportMisuse("response_start on an exchange already answered or ended; call it once")
            return .misuse
        }
    }

    enum AcceptResult { case accepted(HostWebSocket), notHandshake, gone }

    /// `websocket_accept`: the exchange becomes a WebSocket and is consumed
    /// (the plugin's reference is returned; it holds the socket instead).
    func accept(subprotocol: String, conn: UnsafeMutableRawPointer?) -> AcceptResult {
        guard let limits = webSocketLimits else { return .notHandshake }
        let socket = HostWebSocket(plugin: plugin, conn: conn, subprotocol: subprotocol, sink: sink,
                                   maxMessageBytes: limits.maxMessageBytes)
        let outcome = state.withLockedValue { state -> CheckedContinuation<Decision?, Never>?? in
            guard !state.answered, state.socket == nil, !state.ended, !state.gone, state.pluginHolds else { return .none }
            state.socket = socket
            state.ended = true
            state.pluginHolds = false
            defer { state.headWaiter = nil }
            return .some(state.headWaiter)
        }
        guard let waiter = outcome else { return .gone }
        callbacks.close()  // consumed: the socket reports its own close from here
        _ = socket.retainForPlugin()
        waiter?.resume(returning: .upgrade(socket))
        Unmanaged.passUnretained(self).release()
        return .accepted(socket)
    }

    enum WriteResult { case queued, full, closed, misuse }

    func write(_ bytes: ByteBuffer) -> WriteResult {
        let (open, early) = state.withLockedValue { ($0.answered && !$0.ended && !$0.gone, !$0.answered && !$0.gone) }
        if early {
            reportMisuse("response_write before response_start; start the response first")
            return .misuse
        }
        guard open else { return .closed }
        switch sink.enqueue(bytes) {
        case .queued: return .queued
        case .full: return .full
        case .closed: return .closed
        }
    }

    /// `response_end`: no more bytes; the plugin's reference is returned.
    func end() {
        callbacks.close()
        let (headWaiter, whenEnded, release, unanswered) = state.withLockedValue { state in
            state.ended = true
            defer { state.headWaiter = nil; state.whenEnded = [] }
            let release = state.pluginHolds
            state.pluginHolds = false
            // Ending before starting answers 504: the plugin gave no response.
            let unanswered = !state.answered && state.socket == nil && !state.gone
            return (unanswered ? state.headWaiter : nil, state.whenEnded, release, unanswered)
        }
        if unanswered { reportMisuse("response_end without response_start; the client is answered 504 transport_no_answer") }
        headWaiter?.resume(returning: nil)
        whenEnded.forEach { $0() }
        if release { Unmanaged.passUnretained(self).release() }
    }

    /// `exchange_set_context` / `exchange_context`: the plugin's own state.
    var pluginContext: UnsafeMutableRawPointer? {
        get { UnsafeMutableRawPointer(bitPattern: state.withLockedValue { $0.context }) }
        set { state.withLockedValue { $0.context = UInt(bitPattern: newValue) } }
    }

    /// `response_error`: the house JSON error, then the end of the exchange.
    func answerError(status: Int, code: String, message: String) {
        guard (400...599).contains(status) else {
            reportMisuse("response_error with status \(status); an error's status is 400 to 599")
            return end()
        }
        let body = KernelError(.invalid, code: code, message: message).json.jsonText
        if case .started = start(status: status, headers: [("content-type", "application/json")]) {
            _ = write(ByteBuffer(string: body))
        }
        end()
    }

    // MARK: The connection's side

    /// Waits for `response_start` (or `websocket_accept`); nil if the
    /// plugin ended without one or the wait was abandoned.
    func waitForDecision() async -> Decision? {
        await withCheckedContinuation { continuation in
            let ready: Decision?? = state.withLockedValue { state in
                if let head = state.head {
                    state.head = nil
                    return .some(.respond(head))
                }
                if let socket = state.socket { return .some(.upgrade(socket)) }
                if state.ended || state.gone { return .some(nil) }
                state.headWaiter = continuation
                return .none
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Runs `action` once the plugin ended the exchange or the client left
    /// (at once if either happened already).
    func whenEnded(_ action: @escaping @Sendable () -> Void) {
        let done = state.withLockedValue { state -> Bool in
            if state.ended || state.gone { return true }
            state.whenEnded.append(action)
            return false
        }
        if done { action() }
    }

    /// Waits until the plugin ended the exchange or the client left.
    func waitForEnd() async {
        await withCheckedContinuation { continuation in whenEnded { continuation.resume() } }
    }

    /// Streams the answer's body once its head is out, without holding the
    /// request's task: the sink opens with the framing the connection chose,
    /// the connection's `StreamResponseGate` holds back the response's end,
    /// and once the plugin ended the exchange (or the client left) and every
    /// byte was handed to the socket, the gate lets the end go.
    ///
    /// Why not wait here: the task that routed the request keeps, for as
    /// long as it lives, the memory its deepest call needed (Swift's task
    /// allocator frees its slabs only with the task). An idle stream must
    /// not pay that; once this returns, the connection's loop parks and its
    /// task ends (`HTTPConnectionLoop`), and the stream is held by its
    /// socket, its sink and its subscription alone.
    func streamBody() async {
        let sink = self.sink
        // Every HTTP connection of the listener has a gate (`NorthstarServerChannel`).
        await withCheckedContinuation { (opened: CheckedContinuation<Void, Never>) in
            sink.eventLoop.execute {
                StreamResponseGate.on(sink.channel)?.holdEnd()
                sink.open(framing: RequestGuard.bodyFraming(on: sink.channel))
                opened.resume()
            }
        }
        whenEnded { [self] in
            sink.finish {
                self.clientGone()  // a no-op once the plugin has ended the response
                self.markFinished()
                StreamResponseGate.on(sink.channel)?.releaseEnd()
            }
        }
    }

    /// The body a refused handshake's plugin wrote, whole, once it ended.
    func takeBody(maxBytes: Int) -> ByteBuffer {
        sink.takeQueued(maxBytes: maxBytes)
    }

    /// Runs the plugin's `on_request` for this exchange (see `callbacks`).
    func handToPlugin(_ onRequest: () -> Void) {
        callbacks.run(onRequest)
    }

    /// Whether the exchange ended because its client closed the connection.
    var clientHasLeft: Bool { state.withLockedValue { $0.clientLeft } }

    /// Whether the connection is done with the exchange (or its client left).
    var isFinished: Bool { state.withLockedValue { $0.finished || $0.gone } }

    /// The connection is done with the exchange: its answer was sent, or none can be.
    func markFinished() {
        state.withLockedValue { $0.finished = true }
    }

    /// The node drains and its deadline passed: the exchange ends here,
    /// whatever its plugin does, and its connection closes. A plugin that
    /// still held it unended is named in the log.
    func endForShutdown(logger: Logger) {
        let unended = state.withLockedValue { $0.pluginHolds && !$0.ended }
        if unended {
            logger.warning("a transport never ended its exchange; the host ended it at the drain deadline",
                           metadata: ["plugin": "\(plugin.name)", "route": "\(route)"])
        }
        clientGone()
        markFinished()
        sink.channel.close(promise: nil)
    }

    /// Names the plugin's misuse of this exchange in the log, once.
    func reportMisuse(_ what: String) {
        let first = state.withLockedValue { state -> Bool in
            defer { state.misused = true }
            return !state.misused
        }
        guard first else { return }
        plugin.library.handle.logger.warning("plugin misused an exchange: \(what)",
                                             metadata: ["plugin": "\(plugin.name)", "route": "\(route)"])
    }

    /// The client went away (or the host gave up waiting): tell the plugin,
    /// once, if it has not ended the exchange. Its reference stays out until
    /// it calls `response_end`.
    func clientGone() {
        let (notify, headWaiter, whenEnded) = state.withLockedValue { state in
            state.gone = true
            defer { state.headWaiter = nil; state.whenEnded = [] }
            let notify = state.pluginHolds && !state.ended && !state.told
            state.told = true
            return (notify, state.headWaiter, state.whenEnded)
        }
        headWaiter?.resume(returning: nil)
        whenEnded.forEach { $0() }
        if notify { callbacks.run { plugin.exchangeClosed(OpaquePointer(Unmanaged.passUnretained(self).toOpaque())) } }
    }
}
