import Hummingbird
import NIOConcurrencyHelpers
import NIOCore

/// One HTTP exchange routed to a transport plugin: the host's side of an
/// `ns_exchange *`.
///
/// The plugin answers when it is ready (after authenticating, after
/// subscribing) with `response_start`, then streams body bytes into a
/// bounded queue that the connection drains; a client that does not read
/// fills the queue, and the plugin is told (NS_ERR_TOO_LARGE) to end the
/// exchange instead of the server holding more memory.
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
        var chunks: [ByteBuffer] = []
        var queuedBytes = 0
        var bodyWaiter: CheckedContinuation<ByteBuffer?, Never>?
        var ended = false          // the plugin called response_end
        var gone = false           // the client went away, or the host gave up
        var pluginHolds = true     // the plugin's reference is still out
        var told = false           // on_exchange_closed was called
    }

    let plugin: PluginInstance
    let queueLimit: Int
    /// Set for a WebSocket handshake: only then may the plugin accept one.
    let webSocketLimits: WebSocketLimits?
    private let state = NIOLockedValueBox(State())

    init(plugin: PluginInstance, queueLimit: Int, webSocketLimits: WebSocketLimits? = nil) {
        self.plugin = plugin
        self.queueLimit = queueLimit
        self.webSocketLimits = webSocketLimits
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
        let socket = HostWebSocket(plugin: plugin, conn: conn, subprotocol: subprotocol,
                                   queueLimit: limits.sendQueueBytes, maxMessageBytes: limits.maxMessageBytes)
        let outcome = state.withLockedValue { state -> (CheckedContinuation<Decision?, Never>?, Bool)? in
            guard state.head == nil, state.socket == nil, !state.ended, !state.gone, state.pluginHolds else { return nil }
            state.socket = socket
            state.ended = true
            state.pluginHolds = false
            defer { state.headWaiter = nil }
            return (state.headWaiter, true)
        }
        guard let (waiter, _) = outcome else { return .gone }
        _ = socket.retainForPlugin()
        waiter?.resume(returning: .upgrade(socket))
        Unmanaged.passUnretained(self).release()
        return .accepted(socket)
    }

    enum WriteResult { case queued, full, closed }

    func write(_ bytes: ByteBuffer) -> WriteResult {
        let (result, waiter) = state.withLockedValue { state -> (WriteResult, CheckedContinuation<ByteBuffer?, Never>?) in
            guard state.head != nil, !state.ended, !state.gone else { return (.closed, nil) }
            if let waiter = state.bodyWaiter {
                state.bodyWaiter = nil
                return (.queued, waiter)
            }
            guard state.queuedBytes + bytes.readableBytes <= queueLimit else { return (.full, nil) }
            state.chunks.append(bytes)
            state.queuedBytes += bytes.readableBytes
            return (.queued, nil)
        }
        waiter?.resume(returning: bytes)
        return result
    }

    /// `response_end`: no more bytes; the plugin's reference is returned.
    func end() {
        let (headWaiter, bodyWaiter, release) = state.withLockedValue { state in
            state.ended = true
            defer { state.headWaiter = nil; state.bodyWaiter = nil }
            let release = state.pluginHolds
            state.pluginHolds = false
            // Ending before starting answers 500: the plugin gave no response.
            return (state.head == nil ? state.headWaiter : nil, state.chunks.isEmpty ? state.bodyWaiter : nil, release)
        }
        headWaiter?.resume(returning: nil)
        bodyWaiter?.resume(returning: nil)
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

    /// The next body chunk; nil once the plugin has ended the response.
    /// Everything queued goes out as one chunk: a connection that fell
    /// behind catches up with one write instead of one per event.
    func nextChunk() async -> ByteBuffer? {
        await withCheckedContinuation { continuation in
            let ready: ByteBuffer?? = state.withLockedValue { state in
                if !state.chunks.isEmpty {
                    var chunk = state.chunks[0]
                    if state.chunks.count > 1 {
                        chunk.reserveCapacity(state.queuedBytes)
                        for var more in state.chunks.dropFirst() { chunk.writeBuffer(&more) }
                    }
                    state.chunks.removeAll(keepingCapacity: true)
                    state.queuedBytes = 0
                    return .some(chunk)
                }
                if state.ended || state.gone { return .some(nil) }
                state.bodyWaiter = continuation
                return .none
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// The client went away (or the host gave up waiting): tell the plugin,
    /// once, if it has not ended the exchange. Its reference stays out until
    /// it calls `response_end`.
    func clientGone() {
        let (notify, headWaiter, bodyWaiter) = state.withLockedValue { state in
            state.gone = true
            defer { state.headWaiter = nil; state.bodyWaiter = nil }
            let notify = state.pluginHolds && !state.ended && !state.told
            state.told = true
            return (notify, state.headWaiter, state.bodyWaiter)
        }
        headWaiter?.resume(returning: nil)
        bodyWaiter?.resume(returning: nil)
        if notify { plugin.exchangeClosed(OpaquePointer(Unmanaged.passUnretained(self).toOpaque())) }
    }
}
