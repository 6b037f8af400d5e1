import Hummingbird
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
        var head: Head?
        var socket: HostWebSocket?
        var headWaiter: CheckedContinuation<Decision?, Never>?
        var endWaiter: CheckedContinuation<Void, Never>?
        var ended = false          // the plugin called response_end
        var gone = false           // the client went away, or the host gave up
        var pluginHolds = true     // the plugin's reference is still out
        var told = false           // on_exchange_closed was called
    }

    let plugin: PluginInstance
    /// Where the answer's bytes go: the connection's own.
    let sink: ConnectionSink
    /// Set for a WebSocket handshake: only then may the plugin accept one.
    let webSocketLimits: WebSocketLimits?
    private let state = NIOLockedValueBox(State())

    init(plugin: PluginInstance, sink: ConnectionSink, webSocketLimits: WebSocketLimits? = nil) {
        self.plugin = plugin
        self.sink = sink
        self.webSocketLimits = webSocketLimits
        sink.whenGone { [weak self] in self?.clientGone() }
    }

    /// The pointer the plugin gets; it keeps this object alive.
    func retainForPlugin() -> OpaquePointer { OpaquePointer(Unmanaged.passRetained(self).toOpaque()) }

    static func from(_ pointer: OpaquePointer?) -> Exchange? {
        guard let pointer else { return nil }
        return Unmanaged<Exchange>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }

    // MARK: The plugin's side (host services)

    func start(status: Int, headers: [(String, String)]) -> Bool {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Decision?, Never>?? in
            guard state.head == nil, state.socket == nil, !state.gone else { return .none }
            state.head = Head(status: status, headers: headers)
            defer { state.headWaiter = nil }
            return .some(state.headWaiter)
        }
        guard let waiter else { return false }
        waiter?.resume(returning: .respond(Head(status: status, headers: headers)))
        return true
    }

    enum AcceptResult { case accepted(HostWebSocket), notHandshake, gone }

    /// `websocket_accept`: the exchange becomes a WebSocket and is consumed
    /// (the plugin's reference is returned; it holds the socket instead).
    func accept(subprotocol: String, conn: UnsafeMutableRawPointer?) -> AcceptResult {
        guard let limits = webSocketLimits else { return .notHandshake }
        let socket = HostWebSocket(plugin: plugin, conn: conn, subprotocol: subprotocol, sink: sink,
                                   maxMessageBytes: limits.maxMessageBytes)
        let outcome = state.withLockedValue { state -> CheckedContinuation<Decision?, Never>?? in
            guard state.head == nil, state.socket == nil, !state.ended, !state.gone, state.pluginHolds else { return .none }
            state.socket = socket
            state.ended = true
            state.pluginHolds = false
            defer { state.headWaiter = nil }
            return .some(state.headWaiter)
        }
        guard let waiter = outcome else { return .gone }
        _ = socket.retainForPlugin()
        waiter?.resume(returning: .upgrade(socket))
        Unmanaged.passUnretained(self).release()
        return .accepted(socket)
    }

    enum WriteResult { case queued, full, closed }

    func write(_ bytes: ByteBuffer) -> WriteResult {
        let open = state.withLockedValue { $0.head != nil && !$0.ended && !$0.gone }
        guard open else { return .closed }
        switch sink.enqueue(bytes) {
        case .queued: return .queued
        case .full: return .full
        case .closed: return .closed
        }
    }

    /// `response_end`: no more bytes; the plugin's reference is returned.
    func end() {
        let (headWaiter, endWaiter, release) = state.withLockedValue { state in
            state.ended = true
            defer { state.headWaiter = nil; state.endWaiter = nil }
            let release = state.pluginHolds
            state.pluginHolds = false
            // Ending before starting answers 504: the plugin gave no response.
            return (state.head == nil ? state.headWaiter : nil, state.endWaiter, release)
        }
        headWaiter?.resume(returning: nil)
        endWaiter?.resume()
        if release { Unmanaged.passUnretained(self).release() }
    }

    // MARK: The connection's side

    /// Waits for `response_start` (or `websocket_accept`); nil if the
    /// plugin ended without one or the wait was abandoned.
    func waitForDecision() async -> Decision? {
        await withCheckedContinuation { continuation in
            let ready: Decision?? = state.withLockedValue { state in
                if let head = state.head { return .some(.respond(head)) }
                if let socket = state.socket { return .some(.upgrade(socket)) }
                if state.ended || state.gone { return .some(nil) }
                state.headWaiter = continuation
                return .none
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Waits until the plugin ended the exchange or the client left.
    func waitForEnd() async {
        await withCheckedContinuation { continuation in
            let done = state.withLockedValue { state -> Bool in
                if state.ended || state.gone { return true }
                state.endWaiter = continuation
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Streams the answer's body once its head is out: opens the sink with
    /// the framing the connection chose for it, and returns when the plugin
    /// ended it and every byte was handed to the socket (or the client left).
    func streamBody() async {
        let sink = self.sink
        sink.eventLoop.execute { sink.open(framing: RequestGuard.bodyFraming(on: sink.channel)) }
        await withTaskCancellationHandler {
            await waitForEnd()
        } onCancel: {
            clientGone()
        }
        await withCheckedContinuation { continuation in sink.finish { continuation.resume() } }
    }

    /// The body a refused handshake's plugin wrote, whole, once it ended.
    func takeBody(maxBytes: Int) -> ByteBuffer {
        sink.takeQueued(maxBytes: maxBytes)
    }

    /// The client went away (or the host gave up waiting): tell the plugin,
    /// once, if it has not ended the exchange. Its reference stays out until
    /// it calls `response_end`.
    func clientGone() {
        let (notify, headWaiter, endWaiter) = state.withLockedValue { state in
            state.gone = true
            defer { state.headWaiter = nil; state.endWaiter = nil }
            let notify = state.pluginHolds && !state.ended && !state.told
            state.told = true
            return (notify, state.headWaiter, state.endWaiter)
        }
        headWaiter?.resume(returning: nil)
        endWaiter?.resume()
        if notify { plugin.exchangeClosed(OpaquePointer(Unmanaged.passUnretained(self).toOpaque())) }
    }
}
