import NIOCore
import NIOEmbedded
import NIOHTTP1
@testable import NorthstarHost
import Testing

/// What `RequestGuard` does with bytes that do not parse while a response
/// is being written: run on an embedded channel with the server's parser,
/// encoder, raw-bytes watcher and guard, in a connection's order.
@Suite struct RequestGuardTests {
    private let socket = SocketEnd()

    private func connection(sendTimeout: TimeAmount = .seconds(60)) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        let limits = ConnectionLimits()
        let count = ConnectionCount(maxConnections: 10, maxPendingPerAddress: 10)
        let ticket = try count.admit(address: "127.0.0.1", channel: channel)
        let watcher = RequestHeadWatcher(limits: limits)
        let pipeline = channel.pipeline.syncOperations
        try pipeline.addHandler(socket)
        try pipeline.addHandler(watcher)
        try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false,
                                                 withOutboundHeaderValidation: false)
        try pipeline.addHandler(RequestGuard(limits: limits, sendTimeout: sendTimeout, watcher: watcher, count: count, ticket: ticket))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    private func send(_ text: String, to channel: EmbeddedChannel) throws {
        try channel.writeInbound(ByteBuffer(string: text))
    }

    /// Everything written to the socket so far, as text.
    private func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while var bytes = try channel.readOutbound(as: ByteBuffer.self) { text += bytes.readString(length: bytes.readableBytes)! }
        return text
    }

    private func drainParts(_ channel: EmbeddedChannel) throws {
        while try channel.readInbound(as: HTTPServerRequestPart.self) != nil {}
    }

    private func streamHead() -> HTTPServerResponsePart {
        .head(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Type": "text/event-stream"]))
    }

    private func chunk(_ text: String) -> HTTPServerResponsePart {
        .body(.byteBuffer(ByteBuffer(string: text)))
    }

    @Test("bytes that are no request, sent while a stream is written, are answered 400 once the stream has ended")
    func garbageDuringAStreamWaitsForItsEnd() throws {
        let channel = try connection()
        try send("GET /sse HTTP/1.1\r\nHost: x\r\n\r\n", to: channel)
        try drainParts(channel)
        try channel.writeOutbound(streamHead())
        try channel.writeOutbound(chunk("data: 1\n\n"))
        _ = try written(channel)

        #expect(throws: HTTPParserError.self) { try send("\u{01}\u{02} not http\r\n\r\n", to: channel) }
        #expect(channel.isActive, "the stream was cut by a refusal it should have waited for")
        #expect(try written(channel).isEmpty)
        let readsBefore = socket.reads
        channel.read()
        #expect(socket.reads == readsBefore, "reading goes on while the refusal waits")

        // The stream goes on, then ends; the refusal follows its last chunk.
        try channel.writeOutbound(chunk("data: 2\n\n"))
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        let tail = try written(channel)
        let end = try #require(tail.range(of: "0\r\n\r\n"), "the stream's end is missing: \(tail)")
        #expect(tail[..<end.lowerBound].contains("data: 2"))
        let refusal = tail[end.upperBound...]
        #expect(refusal.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(refusal)")
        #expect(refusal.contains(#""code":"bad_request""#))
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive, "the connection stays open after its refusal")
    }

    @Test("a request body that does not parse while an early answer is written closes the connection at once")
    func badBodyDuringAnEarlyAnswerCloses() throws {
        let channel = try connection()
        try send("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", to: channel)
        try drainParts(channel)
        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .unauthorized)))
        #expect(throws: HTTPParserError.self) { try send("zz\r\n", to: channel) }  // no chunk size
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
    }

    @Test("bytes that are no request, with no response being written, are answered 400 at once")
    func garbageBetweenRequestsIsRefusedAtOnce() throws {
        let channel = try connection()
        #expect(throws: HTTPParserError.self) { try send("\u{01}\u{02} not http\r\n\r\n", to: channel) }
        #expect(try written(channel).hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
    }

    /// A whole answer: a head, one chunk and its end, written and flushed
    /// without waiting for the socket to take them.
    private func answer(on channel: EmbeddedChannel) throws {
        try send("GET /file HTTP/1.1\r\nHost: x\r\n\r\n", to: channel)
        try drainParts(channel)
        let parts: [HTTPServerResponsePart] = [.head(HTTPResponseHead(version: .http1_1, status: .ok)), chunk("the whole file"), .end(nil)]
        parts.forEach { channel.write($0, promise: nil) }
        channel.flush()
    }

    @Test("an answer whose end the socket does not take is closed after the send grace")
    func unsentEndClosesAfterTheGrace() throws {
        let channel = try connection(sendTimeout: .seconds(5))
        socket.holding = true
        try answer(on: channel)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(4900))
        #expect(channel.isActive, "closed before the grace was over")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(200))
        #expect(!channel.isActive, "a client that reads nothing holds its connection past the grace")
    }

    @Test("an answer the socket takes at its flush waits for the idle timeout, not the send grace")
    func sentAnswerIsIdleNotTimed() throws {
        let channel = try connection(sendTimeout: .seconds(5))
        try answer(on: channel)
        #expect(try written(channel).hasSuffix("0\r\n\r\n"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(30))
        #expect(channel.isActive, "an idle kept-alive connection was closed long before its idle timeout")
        channel.embeddedEventLoop.advanceTime(by: .seconds(31))
        #expect(!channel.isActive, "an idle connection outlived its idle timeout")
    }

    @Test("an answer whose client pauses, then reads within the grace, keeps its connection")
    func pausedClientWithinTheGraceKeepsItsConnection() throws {
        let channel = try connection(sendTimeout: .seconds(5))
        socket.holding = true
        try answer(on: channel)
        channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        socket.release()
        #expect(try written(channel).hasSuffix("0\r\n\r\n"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(channel.isActive, "the send clock outlived the answer it timed")
        try answer(on: channel)  // the connection serves the next request as usual
        #expect(try written(channel).contains("the whole file"))
    }
}
