import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Serves one HTTP/1.1 connection: its requests one at a time, in order,
/// each answered before the next is read.
///
/// A connection that opened a stream (SSE) holds no task while the stream
/// runs. Swift's task allocator keeps, for as long as a task lives, the
/// memory of the deepest call it made: this loop, the middleware, the
/// router and the transport take 8 KiB and more, which every idle stream
/// would pay if a task waited for it. So once a request has started its
/// stream and the responder returned, the loop parks with the connection's
/// `StreamResponseGate` and the connection's task ends; the gate resumes the
/// loop, in a task of its own, when the stream has ended (or the connection
/// closed), and the loop reads the next request.
///
/// Hummingbird's own loop (`handleHTTP`) cannot park: it reads through the
/// async channel's scoped accessor, which closes the connection when its
/// task ends. This loop takes the channel's inbound stream and outbound
/// writer unscoped, and closes the connection itself when it is done.
///
/// THREAD: one task at a time: the one serving, then, after a park, the one
/// the gate started. The park is decided on the connection's event loop,
/// where the gate also resumes, and once parked the serving task touches
/// nothing of the loop: it only returns.
final class HTTPConnectionLoop: @unchecked Sendable {
    private let channel: any Channel
    private let outbound: NIOAsyncChannelOutboundWriter<HTTPResponsePart>
    private var parts: NIOAsyncChannelInboundStream<HTTPRequestPart>.AsyncIterator
    private let responder: HTTPChannelHandler.Responder
    /// The connection's place in the node's count, lent to each request's
    /// handling (`ConnectionCount.Ticket.current`).
    private let ticket: ConnectionCount.Ticket?
    private let logger: Logger
    /// The current request's parts up to its end have been read.
    private var requestEnded = true
    /// The parked request asked for `Connection: close`.
    private var closeAfterStream = false

    /// A part came where the loop expected another (a body with no request).
    struct UnexpectedPart: Error {}

    init(_ http: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, responder: @escaping HTTPChannelHandler.Responder,
         ticket: ConnectionCount.Ticket?, logger: Logger) {
        channel = http.channel
        let (inbound, outbound) = unscopedParts(of: http)
        self.outbound = outbound
        parts = inbound.makeAsyncIterator()
        self.responder = responder
        self.ticket = ticket
        self.logger = logger
    }

    /// Serves requests until the connection closes, or a stream parks the loop.
    func serve() async {
        let channel = self.channel
        await withTaskCancellationHandler {
            do {
                if try await serveRequests() == .parked { return }
            } catch is HTTPParserError {
                // `RequestGuard` has answered it (400 or 431) and is closing the connection.
                logger.debug("HTTP parse error, closing the connection")
            } catch {
                logger.trace("failed to read or write the connection: \(error)")
            }
            await close()
        } onCancel: {
            channel.close(mode: .input, promise: nil)
        }
    }

    private enum Stop { case closed, parked }

    private func serveRequests() async throws -> Stop {
        if closeAfterStream { return .closed }
        while let head = try await nextHead() {
            requestEnded = false
            let request = Request(head: head, body: RequestBody(asyncSequence: BodyParts(loop: self)))
            try await ConnectionCount.Ticket.$current.withValue(ticket) {
                try await responder(request, ResponseWriter(outbound: outbound), channel)
            }
            let close = request.headers[.connection].map { $0.lowercased().contains("close") } ?? false
            // Streams are opened by GETs only: other requests skip the hop to the event loop.
            if head.method == .get, try await parkWhileStreaming(closeAfter: close) { return .parked }
            if close { return .closed }
        }
        return .closed
    }

    /// Parks the loop while the request's stream runs, if it is still running.
    private func parkWhileStreaming(closeAfter close: Bool) async throws -> Bool {
        try await channel.eventLoop.submit { [self] in
            guard let gate = StreamResponseGate.on(channel) else { return false }
            let parked = gate.parkUntilStreamEnds {
                Task { await self.serve() }
            }
            if parked { closeAfterStream = close }
            return parked
        }.get()
    }

    /// The next request's head, once the current request's body was read
    /// to its end (what its handler left unread is skipped); nil once the
    /// client is done.
    private func nextHead() async throws -> HTTPRequest? {
        while !requestEnded {
            _ = try await nextBodyPart()
        }
        switch try await parts.next() {
        case .head(let head): return head
        case nil: return nil
        case .body, .end: throw UnexpectedPart()
        }
    }

    /// The current request's next body bytes; nil at its end.
    fileprivate func nextBodyPart() async throws -> ByteBuffer? {
        if requestEnded { return nil }
        switch try await parts.next() {
        case .body(let bytes): return bytes
        case .end, nil:
            requestEnded = true
            return nil
        case .head: throw UnexpectedPart()
        }
    }

    /// Half-closes the connection once what was written went out, and
    /// waits for the client to close its side (as Hummingbird's loop does).
    private func close() async {
        outbound.finish()
        try? await channel.closeFuture.get()
    }
}

/// The async channel's stream and writer, outside `executeThenClose`.
///
/// NIO marks its unscoped accessors deprecated in favour of that scope,
/// which closes the connection when it ends. A parked loop outlives its
/// task, so it takes them here, and closes the connection itself (`close()`).
private protocol UnscopedAsyncChannel {
    associatedtype Inbound: Sendable
    associatedtype Outbound: Sendable
    var inbound: NIOAsyncChannelInboundStream<Inbound> { get }
    var outbound: NIOAsyncChannelOutboundWriter<Outbound> { get }
}

extension NIOAsyncChannel: UnscopedAsyncChannel {}

private func unscopedParts<Channel: UnscopedAsyncChannel>(of http: Channel)
    -> (NIOAsyncChannelInboundStream<Channel.Inbound>, NIOAsyncChannelOutboundWriter<Channel.Outbound>) {
    (http.inbound, http.outbound)
}

/// The body of the request a loop is serving: read from the connection as
/// the handler asks for it, up to the request's end. Read once.
private struct BodyParts: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let loop: HTTPConnectionLoop

    struct AsyncIterator: AsyncIteratorProtocol {
        let loop: HTTPConnectionLoop
        func next() async throws -> ByteBuffer? { try await loop.nextBodyPart() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(loop: loop) }
}
