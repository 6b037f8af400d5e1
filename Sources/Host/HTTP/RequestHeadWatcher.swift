import Foundation
import NIOCore
import NIOHTTP1

/// First handler of every connection: it sees the raw bytes, so it can tell
/// an overlong request line (414) from overlong headers (431) before the
/// HTTP parser buffers either, and it writes the answers that must go out
/// as raw bytes because the request could not be parsed.
///
/// THREAD: the connection's event loop only.
final class RequestHeadWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let limits: ConnectionLimits
    private var context: ChannelHandlerContext?
    /// True while the bytes are a request head (not a body, not a WebSocket).
    private var inHead = true
    private var headBytes = 0
    private var onRequestLine = true
    /// The last bytes seen, to find the blank line that ends a head.
    private var recent: UInt32 = 0
    private(set) var answered = false
    /// Bytes the client sent after the current request's head (its body,
    /// or a request pipelined behind it).
    private var bytesPastHead = 0

    /// The current request's head has ended, and nothing came after it: a
    /// parser that has seen the whole head holds no byte of anything else.
    var nothingPastHead: Bool { !inHead && bytesPastHead == 0 }

    init(limits: ConnectionLimits) { self.limits = limits }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// The next bytes start a new request head (after a response, on a kept-alive connection).
    func expectHead() {
        inHead = true
        headBytes = 0
        onRequestLine = true
        recent = 0
        bytesPastHead = 0
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }  // bytes after an answer are dropped; the connection is closing
        let buffer = unwrapInboundIn(data)
        guard inHead else {
            bytesPastHead += buffer.readableBytes
            return context.fireChannelRead(data)
        }
        var lineBytes = 0
        for (offset, byte) in buffer.readableBytesView.enumerated() {
            headBytes += 1
            recent = (recent << 8) | UInt32(byte)
            if onRequestLine {
                if byte == UInt8(ascii: "\n") { onRequestLine = false } else { lineBytes = headBytes }
                if lineBytes > limits.maxRequestLineBytes {
                    return answer(.uriTooLong, code: "uri_too_long",
                                  message: "the request line is over the \(limits.maxRequestLineBytes)-byte limit")
                }
            }
            if headBytes > limits.maxHeaderBytes {
                return answer(.requestHeaderFieldsTooLarge, code: "headers_too_large",
                              message: "the request head is over the \(limits.maxHeaderBytes)-byte limit")
            }
            // "\r\n\r\n" or a bare "\n\n" ends the head.
            if recent == 0x0D0A_0D0A || recent & 0xFFFF == 0x0A0A {
                inHead = false
                bytesPastHead = buffer.readableBytes - offset - 1
                break
            }
        }
        context.fireChannelRead(data)
    }

    /// Answers the request with a JSON error and closes the connection.
    /// Only called while no response has started on this connection.
    func answer(_ status: HTTPResponseStatus, code: String, message: String, headers: [(String, String)] = []) {
        guard !answered, let context else { return }
        answered = true
        let bytes = Self.errorResponse(status, code: code, message: message, headers: headers, allocator: context.channel.allocator)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(bytes)).whenComplete { _ in channel.close(promise: nil) }
    }

    /// A complete `Connection: close` response carrying the JSON error body.
    static func errorResponse(_ status: HTTPResponseStatus, code: String, message: String, headers: [(String, String)] = [],
                              allocator: ByteBufferAllocator) -> ByteBuffer {
        let body = JSONValue.object(["error": .object(["code": .string(code), "message": .string(message)])]).jsonText
        var head = "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\nContent-Type: application/json\r\n"
        head += "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        var buffer = allocator.buffer(capacity: head.utf8.count + body.utf8.count + 2)
        buffer.writeString(head + "\r\n" + body)
        return buffer
    }
}
