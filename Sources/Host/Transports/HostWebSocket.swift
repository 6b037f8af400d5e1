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
/// waits in a bounded queue that the connection drains once it is up. A
/// client that does not read fills the queue and the plugin is told
/// (NS_ERR_TOO_LARGE) to close it, so memory stays bounded.
///
/// OWNERSHIP: the plugin holds one reference from `websocket_accept` until
/// `on_ws_closed` returns, which the host calls exactly once.
final class HostWebSocket: @unchecked Sendable {
    private enum Outbound {
        case frame(WebSocketOpcode, ByteBuffer)
        case close(UInt16, String)
    }

    private struct State {
        var outbound: [Outbound] = []
        var queuedBytes = 0
        var waiter: CheckedContinuation<Outbound?, Never>?
        var closeRequested = false   // websocket_close was called
        var finished = false         // on_ws_closed was called: the socket is gone
        var started = false          // the handshake completed and `run` began
        var onFinish: (@Sendable () -> Void)?
    }

    let plugin: PluginInstance
    let conn: UnsafeMutableRawPointer?
    let subprotocol: String
    let queueLimit: Int
    let maxMessageBytes: Int
    private let state = NIOLockedValueBox(State())

    init(plugin: PluginInstance, conn: UnsafeMutableRawPointer?, subprotocol: String, queueLimit: Int, maxMessageBytes: Int) {
        self.plugin = plugin
        self.conn = conn
        self.subprotocol = subprotocol
        self.queueLimit = queueLimit
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
        let frame = Outbound.frame(opcode == ns_ws_opcode(NS_WS_BINARY) ? .binary : .text, bytes)
        let (result, waiter) = state.withLockedValue { state -> (SendResult, CheckedContinuation<Outbound?, Never>?) in
            guard !state.closeRequested, !state.finished else { return (.closed, nil) }
            if let waiter = state.waiter {
                state.waiter = nil
                return (.queued, waiter)
            }
            guard state.queuedBytes + bytes.readableBytes <= queueLimit else { return (.full, nil) }
            state.outbound.append(frame)
            state.queuedBytes += bytes.readableBytes
            return (.queued, nil)
        }
        waiter?.resume(returning: frame)
        return result
    }

    /// `websocket_close`: sends what is queued, then the close frame. Idempotent.
    func close(code: UInt16, reason: String) {
        // A close reason must fit a control frame (125 bytes with the code).
        let frame = Outbound.close(code, String(decoding: reason.utf8.prefix(120), as: UTF8.self))
        let waiter = state.withLockedValue { state -> CheckedContinuation<Outbound?, Never>? in
            guard !state.closeRequested, !state.finished else { return nil }
            state.closeRequested = true
            // A waiting writer has sent everything: the close goes to it directly.
            guard let waiter = state.waiter else {
                state.outbound.append(frame)
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume(returning: frame)
    }

    // MARK: The connection's side

    /// Serves the upgraded connection: the plugin's queue goes out, the
    /// client's messages go to `on_ws_message`, and when either side ends,
    /// `on_ws_closed` runs once.
    func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async {
        let alreadyFinished = state.withLockedValue { state in
            state.started = true
            return state.finished
        }
        if alreadyFinished { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                while let item = await nextOutbound() {
                    do {
                        switch item {
                        case .frame(let opcode, let bytes):
                            try await outbound.write(.custom(WebSocketFrame(fin: true, opcode: opcode, data: bytes)))
                        case .close(let code, let reason):
                            try await outbound.close(WebSocketErrorCode(codeNumber: Int(code)), reason: reason)
                            return
                        }
                    } catch {
                        return
                    }
                }
            }
            var closeCode: UInt16 = 1000
            do {
                for try await message in inbound.messages(maxSize: maxMessageBytes) {
                    deliver(message)
                }
            } catch {
                closeCode = 1009
            }
            finish(code: closeCode, reason: "")
            group.cancelAll()
        }
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

    /// Waits for the next thing to send; nil once the socket is finished.
    private func nextOutbound() async -> Outbound? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready: Outbound?? = state.withLockedValue { state in
                    if !state.outbound.isEmpty {
                        let item = state.outbound.removeFirst()
                        if case .frame(_, let bytes) = item { state.queuedBytes -= bytes.readableBytes }
                        return .some(item)
                    }
                    if state.finished { return .some(nil) }
                    state.waiter = continuation
                    return .none
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            let waiter = state.withLockedValue { state in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: nil)
        }
    }

    /// Calls `on_ws_closed` once and returns the plugin's reference.
    private func finish(code: UInt16, reason: String) {
        let (first, waiter, onFinish) = state.withLockedValue { state in
            defer { state.waiter = nil; state.onFinish = nil }
            let first = !state.finished
            state.finished = true
            state.outbound.removeAll()
            state.queuedBytes = 0
            return (first, state.waiter, state.onFinish)
        }
        waiter?.resume(returning: nil)
        guard first else { return }
        onFinish?()
        withNSStr(reason) { plugin.webSocketClosed(conn: conn, socket: pointer, code: code, reason: $0) }
        Unmanaged.passUnretained(self).release()
    }
}
