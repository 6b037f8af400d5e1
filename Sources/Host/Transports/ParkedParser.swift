import NIOCore
import NIOHTTP1

/// Stands in for the connection's HTTP parser while a stream runs on it.
///
/// An idle SSE connection's memory is mostly NIO's per-connection state, and
/// the HTTP/1.1 parser's share of it is about 1.6 KiB: the decoder and its
/// llhttp parser, the header array it keeps sized for the next request, and
/// its buffers. A connection parses nothing while its stream runs, so the
/// parser leaves the pipeline and this handler takes its place. It keeps
/// what the client sends meanwhile (a request pipelined behind the stream)
/// and stops reading; when the stream ends, a fresh parser comes back and is
/// given those bytes first, so the request is answered as before.
///
/// The parser is only taken out when it holds nothing: the request's end was
/// parsed and the client sent no byte past its head (`RequestHeadWatcher`),
/// so no part of a next request sits half-parsed inside it. Otherwise it
/// stays, as it always did.
///
/// THREAD: the connection's event loop only.
final class ParkedParser: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer

    private var context: ChannelHandlerContext?
    /// What the client sent while the stream ran, for the parser that comes back.
    private var held: ByteBuffer?
    /// A read was asked for while bytes were held: it is made once they are handed on.
    private var readWanted = false

    /// Takes the parser out of `pipeline` and puts a `ParkedParser` in its
    /// place, if the parser holds nothing; nil, and nothing changed, otherwise.
    static func park(_ pipeline: ChannelPipeline.SynchronousOperations) -> ParkedParser? {
        guard let watcher = try? pipeline.handler(type: RequestHeadWatcher.self), watcher.nothingPastHead,
              let parser = try? pipeline.context(handlerType: ByteToMessageHandler<HTTPRequestDecoder>.self)
        else { return nil }
        let parked = ParkedParser()
        do {
            // In front of the parser: from now on the client's bytes stop
            // here, and the parser, which NIO removes on a later turn of the
            // loop, has nothing to parse meanwhile.
            try pipeline.addHandler(parked, position: .before(parser.handler))
        } catch {
            return nil
        }
        pipeline.removeHandler(context: parser, promise: nil)
        return parked
    }

    /// Puts a fresh parser back, once the old one has left, with its
    /// response encoder (the two are paired: the encoder learns from the
    /// parser which requests were HEAD), hands it what the client sent
    /// meanwhile, and leaves the pipeline. Call once the stream's response
    /// has ended (written through the old encoder).
    func unpark() {
        guard let context else { return }  // the connection closed meanwhile
        let pipeline = context.pipeline.syncOperations
        // A stream that ended at once may end before NIO removed the old parser.
        if (try? pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)) != nil {
            let parked = NIOLoopBound(self, eventLoop: context.eventLoop)
            return context.eventLoop.execute { parked.value.unpark() }
        }
        do {
            if let encoder = try? pipeline.handler(type: HTTPResponseEncoder.self) {
                pipeline.removeHandler(encoder, promise: nil)
            }
            try pipeline.configureHTTPServerPipeline(position: .after(self), withPipeliningAssistance: false,
                                                     withErrorHandling: false, withOutboundHeaderValidation: false,
                                                     withEncoderConfiguration: .init(),
                                                     withDecoderLimitConfiguration: .init())
        } catch {
            // The pipeline refused the handlers: the connection is closing.
            context.close(promise: nil)
            return
        }
        if let held {
            self.held = nil
            context.fireChannelRead(wrapInboundOut(held))
            context.fireChannelReadComplete()
        }
        if readWanted {
            readWanted = false
            context.read()
        }
        pipeline.removeHandler(context: context, promise: nil)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        held = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if held == nil {
            held = bytes
        } else {
            held!.writeBuffer(&bytes)
        }
    }

    func read(context: ChannelHandlerContext) {
        // Reading stops at the first bytes held: the next request waits for
        // the stream, and a client cannot pile bytes up here meanwhile.
        if held != nil {
            readWanted = true
            return
        }
        context.read()
    }
}
