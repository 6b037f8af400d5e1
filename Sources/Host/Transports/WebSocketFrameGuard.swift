import NIOCore
import NIOWebSocket

/// Holds every client frame to RFC 6455 before anything reads it, and closes
/// a connection that breaks the protocol with the code the RFC names:
/// 1002 for an unmasked frame, reserved bits, an unknown opcode, a
/// continuation without a start or a fragmented control frame; 1007 for a
/// text message that is not UTF-8; 1009 for a message over the limit, however
/// it is fragmented.
///
/// It also completes the closing handshake the host starts (1001, 4001,
/// 4008, ...): those close frames are written past the WebSocket library, so
/// the library would answer the client's reply with a close frame of its own,
/// a frame after the close that browsers treat as a broken connection (1006:
/// the app never sees the code). The reply is taken here, and the connection
/// closes, as RFC 6455 has the server do.
///
/// THREAD: the connection's event loop only.
final class WebSocketFrameGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let maxMessageBytes: Int
    /// The data opcode of the fragmented message under way, if any.
    private var fragmented: WebSocketOpcode?
    private var messageBytes = 0
    /// A text message's bytes so far, to check its UTF-8 once it is whole
    /// (a character may be split across fragments).
    private var text = ByteBuffer()
    private var closing = false
    /// Whether the host has sent its close frame on this connection.
    private let hostClosed: @Sendable () -> Bool

    init(maxMessageBytes: Int, hostClosed: @escaping @Sendable () -> Bool) {
        self.maxMessageBytes = maxMessageBytes
        self.hostClosed = hostClosed
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        let frame = unwrapInboundIn(data)
        if let violation = check(frame) {
            return close(context, code: violation.code, reason: violation.reason)
        }
        if frame.opcode == .connectionClose, hostClosed() {
            closing = true
            return context.close(promise: nil)
        }
        context.fireChannelRead(data)
    }

    private func check(_ frame: WebSocketFrame) -> (code: WebSocketErrorCode, reason: String)? {
        guard frame.maskKey != nil else { return (.protocolError, "client frames must be masked") }
        guard !frame.rsv1, !frame.rsv2, !frame.rsv3 else { return (.protocolError, "reserved bits set") }
        switch frame.opcode {
        case .connectionClose, .ping, .pong:
            guard frame.fin else { return (.protocolError, "control frames cannot be fragmented") }
            return nil
        case .continuation:
            guard let opcode = fragmented else { return (.protocolError, "a continuation without a message to continue") }
            return take(frame, opcode: opcode)
        case .text, .binary:
            guard fragmented == nil else { return (.protocolError, "a new message before the last one ended") }
            messageBytes = 0
            text.clear()
            return take(frame, opcode: frame.opcode)
        default:
            return (.protocolError, "unknown opcode")
        }
    }

    /// Counts one data frame of a message; checks the whole message at its end.
    private func take(_ frame: WebSocketFrame, opcode: WebSocketOpcode) -> (code: WebSocketErrorCode, reason: String)? {
        messageBytes += frame.length
        guard messageBytes <= maxMessageBytes else {
            return (.messageTooLarge, "a message is at most \(maxMessageBytes) bytes")
        }
        if opcode == .text {
            var payload = frame.unmaskedData
            text.writeBuffer(&payload)
        }
        fragmented = frame.fin ? nil : opcode
        guard frame.fin, opcode == .text else { return nil }
        defer { text.clear() }
        guard String(validating: text.readableBytesView, as: UTF8.self) != nil else {
            return (.dataInconsistentWithMessage, "text messages must be UTF-8")
        }
        return nil
    }

    private func close(_ context: ChannelHandlerContext, code: WebSocketErrorCode, reason: String) {
        closing = true
        var payload = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        payload.write(webSocketErrorCode: code)
        payload.writeString(reason)
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, data: payload)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(frame)).whenComplete { _ in channel.close(promise: nil) }
    }
}
