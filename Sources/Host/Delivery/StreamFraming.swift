import NIOCore
import NIOWebSocket

/// How a connection's stream is framed on the wire, around the bytes a
/// transport made: HTTP/1.1 chunks, bare bytes (HTTP/1.0, or a response
/// with its own length), WebSocket messages, or nothing at all (a response
/// that has no body, such as one to HEAD).
enum StreamFraming: Hashable, Sendable {
    case chunked
    case plain
    case webSocket
    case none

    /// `payload` framed for the wire; `opcode` is the WebSocket message's kind.
    func wrap(_ payload: ByteBuffer, opcode: WebSocketOpcode = .text) -> ByteBuffer {
        switch self {
        case .plain, .none:
            return payload
        case .chunked:
            // A chunk: its size in hex, CRLF, the bytes, CRLF. An empty write would end the body.
            guard payload.readableBytes > 0 else { return payload }
            var framed = ByteBuffer()
            framed.reserveCapacity(payload.readableBytes + 20)
            framed.writeString(String(payload.readableBytes, radix: 16))
            framed.writeStaticString("\r\n")
            framed.writeImmutableBuffer(payload)
            framed.writeStaticString("\r\n")
            return framed
        case .webSocket:
            return Self.webSocketFrame(payload, opcode: opcode)
        }
    }

    /// One unmasked, final WebSocket frame (a server's frames are never masked).
    static func webSocketFrame(_ payload: ByteBuffer, opcode: WebSocketOpcode) -> ByteBuffer {
        let length = payload.readableBytes
        var framed = ByteBuffer()
        framed.reserveCapacity(length + 10)
        framed.writeInteger(UInt8(0x80) | UInt8(webSocketOpcode: opcode))
        if length < 126 {
            framed.writeInteger(UInt8(length))
        } else if length <= Int(UInt16.max) {
            framed.writeInteger(UInt8(126))
            framed.writeInteger(UInt16(length))
        } else {
            framed.writeInteger(UInt8(127))
            framed.writeInteger(UInt64(length))
        }
        framed.writeImmutableBuffer(payload)
        return framed
    }

    /// A WebSocket close frame: the code, then a reason cut to fit a control frame.
    static func webSocketClose(code: UInt16, reason: String) -> ByteBuffer {
        var payload = ByteBuffer()
        payload.writeInteger(code)
        payload.writeString(String(decoding: reason.utf8.prefix(120), as: UTF8.self))
        return webSocketFrame(payload, opcode: .connectionClose)
    }
}
