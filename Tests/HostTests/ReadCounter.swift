import NIOCore

/// Counts the reads that reach the socket end of an embedded pipeline:
/// a test sees whether a handler stopped reading.
final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    var reads = 0
    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}
