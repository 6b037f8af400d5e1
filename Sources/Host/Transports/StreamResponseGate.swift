import NIOCore
import NIOHTTPTypes

/// Holds back the end of a streamed response until its stream ends, so that
/// no task has to wait for it.
///
/// A transport's stream (an SSE response) is written past the HTTP encoder
/// (`DirectWriter`); the request's task only starts it. When that task
/// writes the response's end, this handler keeps the end, and whatever the
/// connection writes after it, until `releaseEnd()`: then the end goes out
/// behind the last byte of the stream, as if the task had waited.
///
/// The connection's HTTP loop parks here while the stream runs
/// (`parkUntilStreamEnds`), so no task waits for it either; the gate
/// resumes the loop once the stream ended, or the connection closed.
///
/// While the loop is parked, the connection's HTTP parser leaves the
/// pipeline when it holds nothing (`ParkedParser`): an idle stream then
/// keeps about 1.6 KiB less. It comes back when the stream ends.
///
/// A client that pipelines another request behind the stream would have it
/// answered into the middle of the stream; the request waits here instead,
/// and the connection stops reading, until the stream ended. That is what
/// HTTP/1.1 asks, and what a task waiting for the stream did.
///
/// Sits between Hummingbird's connection state handler and the connection's
/// async channel, where the parts are `HTTPRequestPart` and `HTTPResponsePart`.
///
/// THREAD: the connection's event loop only.
final class StreamResponseGate: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private var context: ChannelHandlerContext?
    /// The next response end is to be kept.
    private var holding = false
    /// The end, and what was written after it, in order.
    private var heldWrites: [(NIOAny, EventLoopPromise<Void>?)] = []
    /// Resumes the parked HTTP loop: called once the held end went out, or the connection closed.
    private var resumeLoop: (() -> Void)?
    /// Parts of a request sent behind the stream, not passed on yet.
    private var heldReads: [NIOAny] = []
    private var readWanted = false
    /// The last request passed on was read to its end.
    private var requestEnded = false
    /// Stands in for the HTTP parser while the stream runs, when the parser could leave.
    private var parkedParser: ParkedParser?

    /// The gate of `channel`'s pipeline, if it has one (on its loop).
    static func on(_ channel: any Channel) -> StreamResponseGate? {
        try? channel.pipeline.syncOperations.handler(type: StreamResponseGate.self)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        failHeld()
    }

    /// A stream is being written: its response's end is held.
    var streaming: Bool { holding }

    /// Keeps the current response's end until `releaseEnd()`.
    func holdEnd() {
        holding = true
    }

    /// Keeps `resume` until the held end went out, or the connection
    /// closed, then calls it once. False, and `resume` is not kept, when no
    /// end is held: the stream has ended already.
    ///
    /// While the loop is parked, the HTTP parser leaves the pipeline if it
    /// holds nothing (`ParkedParser`), and comes back when the stream ends.
    func parkUntilStreamEnds(_ resume: @escaping () -> Void) -> Bool {
        guard holding, let context else { return false }
        resumeLoop = resume
        if requestEnded, heldReads.isEmpty, parkedParser == nil {
            parkedParser = ParkedParser.park(context.pipeline.syncOperations)
        }
        return true
    }

    /// The stream ended: its response's end goes out, then what waited behind it.
    func releaseEnd() {
        guard holding, let context else { return }
        holding = false
        let writes = heldWrites
        heldWrites = []
        for (data, promise) in writes { context.write(data, promise: promise) }
        context.flush()
        // The parser comes back after the response's end went through the
        // encoder, and parses what the client sent meanwhile.
        parkedParser?.unpark()
        parkedParser = nil
        let reads = heldReads
        heldReads = []
        for part in reads { channelRead(context: context, data: part) }
        if !reads.isEmpty { context.fireChannelReadComplete() }
        if readWanted, heldReads.isEmpty {
            readWanted = false
            context.read()
        }
        resume()
    }

    /// Resumes the parked loop, if one is parked here: after the held reads
    /// were passed on, so the loop finds the request sent behind the stream.
    private func resume() {
        let resume = resumeLoop
        resumeLoop = nil
        resume?()
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if holding, !heldWrites.isEmpty || isEnd(data) {
            heldWrites.append((data, promise))
            return
        }
        context.write(data, promise: promise)
    }

    func read(context: ChannelHandlerContext) {
        if !heldReads.isEmpty {
            readWanted = true  // stop reading: the next request waits for the stream
            return
        }
        context.read()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // A head while the end is held is the next request, sent behind the stream.
        if !heldReads.isEmpty || (holding && isHead(data)) {
            heldReads.append(data)
            return
        }
        switch unwrapInboundIn(data) {
        case .head: requestEnded = false
        case .end: requestEnded = true
        case .body: break
        }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failHeld()
        context.fireChannelInactive()
    }

    private func isHead(_ data: NIOAny) -> Bool {
        if case .head = unwrapInboundIn(data) { return true }
        return false
    }

    private func isEnd(_ data: NIOAny) -> Bool {
        if case .end = unwrapOutboundIn(data) { return true }
        return false
    }

    /// The connection closed with writes held: they never will be written.
    private func failHeld() {
        let writes = heldWrites
        heldWrites = []
        heldReads = []
        holding = false
        parkedParser = nil
        for (_, promise) in writes { promise?.fail(ChannelError.ioOnClosedChannel) }
        resume()  // the loop finds the connection closed and ends
    }
}
