import NIOCore

/// The socket end of an embedded pipeline, for tests that need to see what
/// a handler asks of the socket: it counts reads (has a handler stopped
/// reading?), and it can stop taking bytes, as a client that stops reading
/// makes a real socket do. While `holding`, writes wait here, unwritten,
/// and their promises stay open.
final class SocketEnd: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    var reads = 0
    var holding = false
    private var waiting: [(NIOAny, EventLoopPromise<Void>?)] = []
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if holding { waiting.append((data, promise)) } else { context.write(data, promise: promise) }
    }

    func flush(context: ChannelHandlerContext) {
        if !holding { context.flush() }
    }

    /// The client reads again: everything held goes to the socket.
    func release() {
        holding = false
        guard let context else { return }
        waiting.forEach { context.write($0.0, promise: $0.1) }
        waiting = []
        context.flush()
    }
}
