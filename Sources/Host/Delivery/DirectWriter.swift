import NIOCore

/// The first handler of every connection's pipeline: the point where the
/// host writes a stream's bytes, already framed, straight to the socket.
///
/// Live events are framed once per transport and the same buffer goes to
/// every subscriber; passing it through the HTTP or WebSocket encoders would
/// frame it again per connection. This handler also tells the connection's
/// sink when the socket closes, so a stream that is only written to still
/// learns that its client left.
///
/// THREAD: the connection's event loop only.
final class DirectWriter: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny

    private var context: ChannelHandlerContext?
    private var channel: (any Channel)?
    /// The stream being written on this connection now, if any.
    var sink: ConnectionSink?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        channel = context.channel
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        channel = nil
    }

    /// Writes framed bytes toward the socket, past every encoder.
    func write(_ bytes: ByteBuffer, promise: EventLoopPromise<Void>? = nil) {
        guard let context else { promise?.fail(ChannelError.ioOnClosedChannel); return }
        context.write(NIOAny(bytes), promise: promise)
    }

    func flush() {
        context?.flush()
    }

    /// Whether the socket takes more now (NIO's unwritten bytes are under the high water mark).
    var isWritable: Bool { channel?.isWritable ?? false }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { sink?.becameWritable() }
        context.fireChannelWritabilityChanged()
    }

    /// A client that closes its side while a stream is being written to it
    /// has left (browsers and HTTP clients never half-close a stream they
    /// still read): the connection closes, and the stream learns it now
    /// rather than at its next write.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if sink != nil, let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        sink?.connectionClosed()
        sink = nil
        context.fireChannelInactive()
    }
}
