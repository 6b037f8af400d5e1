import NIOConcurrencyHelpers
import NIOCore
import NIOWebSocket
import NorthstarPluginKit
import PluginAPI
import WSCore

/// One WebSocket a transport plugin accepted: the host's side of an
/// `ns_websocket *`.
///
/// The plugin may accept and send before the upgrade completes (it accepts
/// from a subscribe completion, then events flow at once): what it sends
/// waits in the connection's `ConnectionSink` until the 101 is out, and then
/// goes out in order with the live events the host writes there itself. A
/// client that does not read fills the sink, and the plugin is told
/// (NS_ERR_TOO_LARGE) to close it, so memory stays bounded.
///
/// OWNERSHIP: the plugin holds one reference from `websocket_accept` until
/// `on_ws_closed` returns, which the host calls exactly once.
final class HostWebSocket: @unchecked Sendable {
    private struct State {
        var closeRequested = false   // websocket_close was called
        var finished = false         // on_ws_closed was called: the socket is gone
        var started = false          // the handshake completed and `run` began
        var onFinish: (@Sendable () -> Void)?
        var identity: UserIdentity?  // whose messages these are, when the plugin authenticated during the handshake
    }

    let plugin: PluginInstance
    let conn: UnsafeMutableRawPointer?
    let subprotocol: String
    let sink: ConnectionSink
    let maxMessageBytes: Int
    /// How long the host waits for the client's answer to its close frame.
    static let closeTimeout: TimeAmount = .seconds(10)
    private let state = NIOLockedValueBox(State())

    init(plugin: PluginInstance, conn: UnsafeMutableRawPointer?, subprotocol: String, sink: ConnectionSink, maxMessageBytes: Int) {
        self.plugin = plugin
        self.conn = conn
        self.subprotocol = subprotocol
        self.sink = sink
        self.maxMessageBytes = maxMessageBytes
    }

    /// The pointer the plugin gets; it keeps this object alive until `on_ws_closed`.
    func retainForPlugin() -> OpaquePointer { OpaquePointer(Unmanaged.passRetained(self).toOpaque()) }

    static func from(_ pointer: OpaquePointer?) -> HostWebSocket? {
        guard let pointer else { return nil }
        return Unmanaged<HostWebSocket>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }

    private var pointer: OpaquePointer { OpaquePointer(Unmanaged.passUnretained(self).toOpaque()) }

    // MARK: The plugin's side (host services)

    enum SendResult { case queued, full, closed }

    /// `websocket_send`: queues one message (already copied into `bytes`).
    func send(_ opcode: ns_ws_opcode, _ bytes: ByteBuffer) -> SendResult {
        guard state.withLockedValue({ !$0.closeRequested && !$0.finished }) else { return .closed }
        switch sink.enqueue(bytes, opcode: opcode == ns_ws_opcode(NS_WS_BINARY) ? .binary : .text) {
        case .queued: return .queued
        case .full: return .full
        case .closed: return .closed
        }
    }

    /// `websocket_close`: sends what is queued, then the close frame (past
    /// the queue limit: a slow consumer still learns why). Idempotent. The
    /// connection closes when the client answers, or after `closeTimeout`
    /// (at once when everything is written, for a client that was cut off).
    func close(code: UInt16, reason: String) {
        let first = state.withLockedValue { state -> Bool in
            guard !state.closeRequested, !state.finished else { return false }
            state.closeRequested = true
            return true
        }
        guard first else { return }
        sink.enqueueFramed(StreamFraming.webSocketClose(code: code, reason: reason))
        let sink = self.sink
        sink.finish {
            // A cut-off socket closes once its last word has left (see ConnectionSink).
            guard !sink.isCutOff else { return }
            let channel = sink.channel
            let timeout = channel.eventLoop.scheduleTask(in: Self.closeTimeout) { channel.close(promise: nil) }
            channel.closeFuture.whenComplete { _ in timeout.cancel() }
        }
    }

    /// The user the plugin authenticated while it decided the handshake,
    /// whose pace of messages this socket's are counted in.
    var identity: UserIdentity? {
        get { state.withLockedValue { $0.identity } }
        set { state.withLockedValue { $0.identity = newValue } }
    }

    /// Whether `close` has sent the host's close frame (the client's next close frame is its reply).
    var closeSent: Bool { state.withLockedValue { $0.closeRequested } }

    // MARK: The connection's side

    /// Serves the upgraded connection: what the plugin queued goes out, the
    /// client's messages go to `on_ws_message`, and when either side ends,
    /// `on_ws_closed` runs once.
    func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async {
        let alreadyFinished = state.withLockedValue { state in
            state.started = true
            return state.finished
        }
        if alreadyFinished { return }
        let sink = self.sink
        sink.eventLoop.execute { sink.open(framing: .webSocket) }
        var closeCode: UInt16 = 1000
        // Each message takes its place in its user's and tenant's pace (`limits.ws_messages_per_second_per_user`
        // and `..._per_tenant`): past it, the next is read only when its place is due, so a client sending as fast
        // as it can is slowed by TCP to the pace, refused nothing, and costs no more than that pace.
        let rates = plugin.library.handle.kernel?.messageRates
        let user = identity
        var alone: UInt64?  // the pace of a socket whose user is not known: its own, at a user's rate
        do {
            for try await message in inbound.messages(maxSize: maxMessageBytes) {
                if let rates {
                    let wait = user.map(rates.pace) ?? rates.pace(alone: &alone)
                    if wait > 0 { try? await Task.sleep(nanoseconds: wait) }
                }
                deliver(message)
            }
        } catch {
            closeCode = 1009
        }
        finish(code: closeCode, reason: "")
    }

    /// Runs `action` once the socket finishes; false (and never runs it)
    /// when it already has.
    func whenFinished(_ action: @escaping @Sendable () -> Void) -> Bool {
        state.withLockedValue { state in
            guard !state.finished else { return false }
            state.onFinish = action
            return true
        }
    }

    /// Whether the handshake completed and the connection is being served.
    var hasStarted: Bool { state.withLockedValue { $0.started } }

    /// The upgrade never completed (the client left during the handshake).
    func abandon() {
        finish(code: 1006, reason: "the upgrade did not complete")
    }

    private func deliver(_ message: WebSocketMessage) {
        switch message {
        case .text(let text):
            var text = text
            text.withUTF8 { buffer in
                plugin.webSocketMessage(conn: conn, socket: pointer, opcode: ns_ws_opcode(NS_WS_TEXT),
                                        payload: ns_bytes(ptr: buffer.baseAddress, len: UInt64(buffer.count)))
            }
        case .binary(let buffer):
            buffer.withUnsafeReadableBytes { raw in
                plugin.webSocketMessage(conn: conn, socket: pointer, opcode: ns_ws_opcode(NS_WS_BINARY),
                                        payload: ns_bytes(ptr: raw.bindMemory(to: UInt8.self).baseAddress, len: UInt64(raw.count)))
            }
        }
    }

    /// Calls `on_ws_closed` once and returns the plugin's reference.
    private func finish(code: UInt16, reason: String) {
        let (first, onFinish) = state.withLockedValue { state in
            defer { state.onFinish = nil }
            let first = !state.finished
            state.finished = true
            return (first, state.onFinish)
        }
        guard first else { return }
        sink.finish {}
        onFinish?()
        withNSStr(reason) { plugin.webSocketClosed(conn: conn, socket: pointer, code: code, reason: $0) }
        Unmanaged.passUnretained(self).release()
    }
}
