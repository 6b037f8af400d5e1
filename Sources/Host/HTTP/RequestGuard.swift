import Foundation
import NIOCore
import NIOHTTP1

/// Sits right after the HTTP parser and makes every connection end well:
/// a malformed request is answered (400, 408, 413, 426) and closed, a
/// connection that sends nothing, or stops halfway, is timed out, a client
/// that stops reading its answer (a download) is closed once it has read
/// nothing for the slow-consumer grace, and an answer given before the
/// request body was read closes the connection instead of waiting for a
/// body that may never end.
///
/// THREAD: the connection's event loop only.
final class RequestGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum Phase {
        /// Waiting for a request head; `first` on a new connection.
        case waiting(first: Bool)
        /// The head arrived; its body is being read.
        case readingBody
        /// The request was read whole; its response is being written.
        case responding
    }

    private let limits: ConnectionLimits
    /// How long an answer may wait for a client that reads none of it
    /// (`limits.slow_consumer_grace_seconds`).
    private let sendTimeout: TimeAmount
    private let watcher: RequestHeadWatcher
    private let count: ConnectionCount
    private let ticket: ConnectionCount.Ticket
    private var phase = Phase.waiting(first: true)
    /// A response head is out and its end is not: an error now can only close.
    private var responseOpen = false
    /// Requests read whole, and responses finished: equal when nothing is
    /// pending. A pipelined client can be ahead by several requests.
    private var requestsRead = 0
    private var responsesDone = 0
    private var closeAfterResponse = false
    /// The answer is out and the output closed; what the client still sends
    /// is read and dropped until it stops or `lingerTime` passes. Closing at
    /// once would reset the connection while the client is still sending,
    /// and a reset can destroy the answer before the client reads it.
    private var lingering = false
    private var timer: Scheduled<Void>?
    /// Bytes sent after a request read whole did not parse, while its
    /// response (a stream, perhaps) was being written: they are answered
    /// once that response has ended, and reading stops meanwhile.
    private var refusedAfterResponse: HTTPParserError?
    /// The last answer's end is written but has not reached the socket yet.
    private var endUnsent = false
    /// The request being answered is a HEAD: its answer has no body.
    private var answeringHead = false
    /// How the body of the response being written is framed on the wire,
    /// as the HTTP encoder will frame it: a streaming exchange writes its
    /// bytes past the encoder and frames them itself.
    private(set) var bodyFraming = StreamFraming.chunked

    /// How long a connection answered early keeps reading what the client still sends.
    static let lingerTime: TimeAmount = .seconds(2)

    init(limits: ConnectionLimits, sendTimeout: TimeAmount, watcher: RequestHeadWatcher, count: ConnectionCount,
         ticket: ConnectionCount.Ticket) {
        self.limits = limits
        self.sendTimeout = sendTimeout
        self.watcher = watcher
        self.count = count
        self.ticket = ticket
    }

    func handlerAdded(context: ChannelHandlerContext) { arm(context) }
    func handlerRemoved(context: ChannelHandlerContext) { cancelTimer() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !watcher.answered, !lingering else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            count.requestArrived(ticket)
            answeringHead = head.method == .HEAD
            if let (status, code, message, headers) = refusal(of: head) {
                return watcher.answer(status, code: code, message: message, headers: headers)
            }
            phase = .readingBody
        case .body:
            break
        case .end:
            requestsRead += 1
            phase = .responding
        }
        arm(context)
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status == .switchingProtocols:
            // A WebSocket from here on: its own handlers keep time and limits.
            // Removed once the 101 is written: a context removed mid-write
            // would drop the flush that follows it.
            cancelTimer()
            let written = context.eventLoop.makePromise(of: Void.self)
            written.futureResult.cascade(to: promise)
            context.write(data, promise: written)
            let pipeline = context.pipeline, watcher = self.watcher
            written.futureResult.assumeIsolated().whenComplete { [self] _ in
                pipeline.syncOperations.removeHandler(watcher, promise: nil)
                pipeline.syncOperations.removeHandler(self, promise: nil)
            }
        case .head(let head) where head.status.code < 200:
            context.write(data, promise: promise)  // 100 Continue: the real answer follows
        case .head(var head):
            responseOpen = true
            if case .readingBody = phase, requestsRead == responsesDone {
                // Answered before the body was read (an early 401 or 413): the
                // rest of the body is not worth waiting for.
                closeAfterResponse = true
                head.headers.replaceOrAdd(name: "Connection", value: "close")
            }
            bodyFraming = Self.framing(of: head, answeringHead: answeringHead)
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            responseOpen = false
            responsesDone += 1
            guard !closeAfterResponse, refusedAfterResponse == nil, case .responding = phase, requestsRead == responsesDone else {
                context.write(data, promise: promise)
                if closeAfterResponse {
                    linger(context)
                } else if let error = refusedAfterResponse {
                    refuse(error)
                }
                return
            }
            // Everything asked has been answered: the connection is idle
            // once the answer is on the wire. Its idle clock starts then,
            // not now: a client still reading a stream's last bytes (a slow
            // consumer's last word, kept for the grace) is not idle. One
            // that reads none of them for the grace is closed.
            phase = .waiting(first: false)
            watcher.expectHead()
            let written = context.eventLoop.makePromise(of: Void.self)
            written.futureResult.cascade(to: promise)
            cancelTimer()  // a clock started while the body was written: the end's own starts at its flush
            endUnsent = true
            context.write(data, promise: written)
            written.futureResult.assumeIsolated().whenComplete { [self] result in
                endUnsent = false
                if case .success = result, case .waiting(first: false) = phase {
                    count.becameIdle(ticket)
                    arm(context)
                }
            }
        }
    }

    /// Most answers are on the wire when their flush returns, and need no
    /// clock. One whose end the socket has not taken by then starts the
    /// send clock: its client reads slowly, or not at all.
    func flush(context: ChannelHandlerContext) {
        context.flush()
        if endUnsent, timer == nil { startSendTimeout(context) }
    }

    /// A download whose client stops reading: NIO holds what the socket
    /// does not take, the answer's writer waits, and the connection would
    /// stay held for as long as the client likes. Once the socket has taken
    /// nothing for the grace, the connection closes (a client that only
    /// paused resumes with a `Range` request). A stream's slow reader is
    /// its sink's business (cut off, told where to resume, then closed).
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .responding = phase, responseOpen, StreamResponseGate.on(context.channel)?.streaming != true {
            if context.channel.isWritable {
                cancelTimer()
            } else if timer == nil {
                startSendTimeout(context)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    /// Closes the connection unless what is written reaches the socket
    /// within the grace (the caller cancels it then, or re-arms another clock).
    private func startSendTimeout(_ context: ChannelHandlerContext) {
        cancelTimer()
        let loop = context.eventLoop.assumeIsolated()
        timer = loop.scheduleTask(in: sendTimeout) { [self] in
            timer = nil
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if lingering, let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)  // the client finished sending: nothing left to protect
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// The framing NIO's HTTP encoder gives a response body.
    static func framing(of head: HTTPResponseHead, answeringHead: Bool) -> StreamFraming {
        if answeringHead || head.status.code < 200 || head.status == .noContent || head.status == .notModified { return .none }
        if head.headers.contains(name: "content-length") { return .plain }
        return head.version.major == 1 && head.version.minor >= 1 ? .chunked : .plain
    }

    /// The framing of the response being written on `channel` (on its loop).
    static func bodyFraming(on channel: any Channel) -> StreamFraming {
        (try? channel.pipeline.syncOperations.handler(type: RequestGuard.self))?.bodyFraming ?? .chunked
    }

    /// Flushes the answer, closes the output and drops input until the client stops.
    private func linger(_ context: ChannelHandlerContext) {
        lingering = true
        cancelTimer()
        context.flush()
        context.close(mode: .output, promise: nil)
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: Self.lingerTime) { channel.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if lingering { return }  // whatever the client still sends no longer matters
        defer {
            // Passed on in every case: a request whose body was cut short
            // (EOF mid-body) must fail its handler, never look complete.
            context.fireErrorCaught(error)
        }
        guard let parserError = error as? HTTPParserError else { return }
        cancelTimer()
        if responseOpen {
            // The request being answered was read whole: what failed is
            // what came after it, which the answer must not be cut for.
            // Whether the parser saw those bytes before or after a stream
            // parked it (`ParkedParser`), they are answered after the stream.
            guard case .responding = phase else { return context.close(promise: nil) }
            refusedAfterResponse = refusedAfterResponse ?? parserError
            return
        }
        refuse(parserError)
    }

    func read(context: ChannelHandlerContext) {
        // A refusal waits for the response: nothing the client sends now can be served.
        if refusedAfterResponse == nil { context.read() }
    }

    /// Answers a request that did not parse (400 or 431) and closes the connection.
    private func refuse(_ error: HTTPParserError) {
        let (status, message) = Self.describe(error)
        watcher.answer(status, code: status == .requestHeaderFieldsTooLarge ? "headers_too_large" : "bad_request", message: message)
    }

    /// What is wrong with a head the parser accepted, if anything.
    private func refusal(of head: HTTPRequestHead) -> (HTTPResponseStatus, String, String, [(String, String)])? {
        let lengths = head.headers["Content-Length"]
        if !lengths.isEmpty, !head.headers["Transfer-Encoding"].isEmpty {
            return (.badRequest, "bad_request", "Content-Length and Transfer-Encoding together are refused", [])
        }
        if Set(lengths.flatMap { $0.split(separator: ",").map(\.trimmingHeaderWhitespace) }).count > 1 {
            return (.badRequest, "bad_request", "conflicting Content-Length values", [])
        }
        if let length = lengths.first.flatMap({ Int64($0.trimmingHeaderWhitespace) }), length > limits.maxDeclaredBodyBytes {
            return (.payloadTooLarge, "body_too_large", "the declared body is over the \(limits.maxDeclaredBodyBytes)-byte limit", [])
        }
        if head.headers["Upgrade"].contains(where: { $0.lowercased() == "websocket" }) {
            guard head.method == .GET else {
                return (.badRequest, "bad_request", "a WebSocket handshake is a GET", [])
            }
            guard head.headers["Sec-WebSocket-Version"] == ["13"] else {
                return (.upgradeRequired, "unsupported_websocket_version", "only WebSocket version 13 is supported",
                        [("Sec-WebSocket-Version", "13")])
            }
            let keys = head.headers["Sec-WebSocket-Key"]
            guard keys.count == 1, let key = Data(base64Encoded: keys[0]), key.count == 16 else {
                return (.badRequest, "bad_request", "Sec-WebSocket-Key must be 16 bytes in base64", [])
            }
        }
        return nil
    }

    /// Restarts the clock for the phase the connection is in.
    private func arm(_ context: ChannelHandlerContext) {
        cancelTimer()
        let delay: TimeAmount
        switch phase {
        case .waiting(let first): delay = first ? limits.headerTimeout : limits.idleTimeout
        case .readingBody: delay = limits.bodyTimeout
        case .responding: return  // a long-lived stream is the response's business
        }
        let loop = context.eventLoop.assumeIsolated()
        timer = loop.scheduleTask(in: delay) { [self] in
            timer = nil
            switch phase {
            case .waiting(first: false):
                context.close(promise: nil)  // an idle kept-alive connection just closes
            case .waiting(first: true), .readingBody:
                if responseOpen { context.close(promise: nil); return }
                watcher.answer(.requestTimeout, code: "request_timeout", message: "the request did not arrive in time")
            case .responding:
                break
            }
        }
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
    }

    private static func describe(_ error: HTTPParserError) -> (HTTPResponseStatus, String) {
        switch error {
        case .headerOverflow: (.requestHeaderFieldsTooLarge, "the request head is too large")
        case .invalidContentLength, .unexpectedContentLength: (.badRequest, "invalid Content-Length")
        case .invalidChunkSize: (.badRequest, "invalid chunked encoding")
        case .invalidHeaderToken, .invalidCharactersUsed, .lfExpected:
            (.badRequest, "invalid characters in the request head")
        case .invalidMethod: (.badRequest, "invalid method")
        case .invalidURL: (.badRequest, "invalid request target")
        case .invalidVersion: (.badRequest, "only HTTP/1.x is served here")
        default: (.badRequest, "malformed request")
        }
    }
}
