import NIOCore
import NIOEmbedded
import NIOHTTP1
@testable import NorthstarHost
import Testing

/// The HTTP parser leaves a streaming connection's pipeline and comes back
/// when the stream ends: run on an embedded channel with the server's
/// parser, its paired encoder and the raw-bytes watcher, as a connection has.
@Suite struct ParkedParserTests {
    private let socket = SocketEnd()

    private func connection() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        let pipeline = channel.pipeline.syncOperations
        try pipeline.addHandler(socket)
        try pipeline.addHandler(RequestHeadWatcher(limits: ConnectionLimits()))
        try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false,
                                                 withOutboundHeaderValidation: false)
        return channel
    }

    private func send(_ text: String, to channel: EmbeddedChannel) throws {
        try channel.writeInbound(ByteBuffer(string: text))
    }

    private func parts(of channel: EmbeddedChannel) throws -> [HTTPServerRequestPart] {
        var parts: [HTTPServerRequestPart] = []
        while let part = try channel.readInbound(as: HTTPServerRequestPart.self) { parts.append(part) }
        return parts
    }

    private func hasParser(_ channel: EmbeddedChannel) -> Bool {
        (try? channel.pipeline.syncOperations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)) != nil
    }

    /// Everything written to the socket so far, as text.
    private func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while var bytes = try channel.readOutbound(as: ByteBuffer.self) { text += bytes.readString(length: bytes.readableBytes)! }
        return text
    }

    /// Answers the request in flight: a head, an optional body, the end.
    private func respond(_ channel: EmbeddedChannel, body: String? = nil) throws {
        var headers = HTTPHeaders()
        if let body { headers.add(name: "Content-Length", value: String(body.utf8.count)) }
        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)))
        if let body { try channel.writeOutbound(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: body)))) }
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
    }

    @Test("a request sent while the stream runs waits, bytes and all, then is parsed by the parser that comes back")
    func holdsAndReplays() throws {
        let channel = try connection()
        try send("GET /sse HTTP/1.1\r\nHost: x\r\n\r\n", to: channel)
        #expect(try parts(of: channel).count == 2)  // head and end
        let parked = try #require(ParkedParser.park(channel.pipeline.syncOperations))
        channel.embeddedEventLoop.run()  // NIO removes the parser on the loop's next turn
        #expect(!hasParser(channel))

        // A HEAD request, in two pieces: nothing is parsed, and reading stops at the first piece.
        try send("HEAD /healthz HTTP/1.1\r\nHost: x\r\n", to: channel)
        let readsBefore = socket.reads
        channel.read()
        #expect(socket.reads == readsBefore, "reading goes on while bytes wait")
        try send("\r\n", to: channel)
        #expect(try parts(of: channel).isEmpty)

        // The stream's response ends through the encoder it started with; then the parser returns.
        try respond(channel)
        _ = try written(channel)
        parked.unpark()
        #expect(hasParser(channel))
        #expect(socket.reads == readsBefore + 1, "the read asked for meanwhile is made")
        let replayed = try parts(of: channel)
        guard case .head(let head)? = replayed.first else { Issue.record("no head: \(replayed)"); return }
        #expect(head.method == .HEAD && head.uri == "/healthz")
        #expect(replayed.count == 2)

        // The new parser is paired with the new encoder: the answer to HEAD
        // is framed with no body (a GET's would end with the last chunk).
        try respond(channel)
        let answer = try written(channel)
        #expect(answer.hasPrefix("HTTP/1.1 200"))
        #expect(!answer.hasSuffix("0\r\n\r\n"), "a HEAD answer was framed with a body: \(answer)")
        _ = try channel.finish()
    }

    @Test("the parser stays when the client sent anything past the head: a pipelined piece, or a body")
    func staysWhenItHoldsBytes() throws {
        let pipelined = try connection()
        try send("GET /sse HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHo", to: pipelined)
        #expect(ParkedParser.park(pipelined.pipeline.syncOperations) == nil)
        #expect(hasParser(pipelined))
        _ = try? pipelined.finish()  // the parser holds half a request: it reports the EOF

        let withBody = try connection()
        try send("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n", to: withBody)
        try send("ok", to: withBody)
        #expect(ParkedParser.park(withBody.pipeline.syncOperations) == nil)
        #expect(hasParser(withBody))
        _ = try withBody.finish()
    }

    @Test("a stream that ends before NIO removed the parser gets its parser back all the same")
    func endsBeforeTheParserLeft() throws {
        let channel = try connection()
        try send("GET /sse HTTP/1.1\r\nHost: x\r\n\r\n", to: channel)
        _ = try parts(of: channel)
        let parked = try #require(ParkedParser.park(channel.pipeline.syncOperations))
        try send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n", to: channel)  // held, not parsed by the leaving parser
        #expect(try parts(of: channel).isEmpty)
        try respond(channel)
        parked.unpark()
        channel.embeddedEventLoop.run()
        #expect(hasParser(channel))
        let replayed = try parts(of: channel)
        guard case .head(let head)? = replayed.first else { Issue.record("no head: \(replayed)"); return }
        #expect(head.uri == "/next" && replayed.count == 2)
        #expect((try? channel.pipeline.syncOperations.handler(type: ParkedParser.self)) == nil)
        _ = try channel.finish()
    }

    @Test("bytes that are no request, sent while the stream runs, reach the parser that comes back as a parse error")
    func garbageIsParsedAfterwards() throws {
        let channel = try connection()
        try send("GET /sse HTTP/1.1\r\nHost: x\r\n\r\n", to: channel)
        _ = try parts(of: channel)
        let parked = try #require(ParkedParser.park(channel.pipeline.syncOperations))
        channel.embeddedEventLoop.run()
        try send("\u{01}\u{02} not http\r\n\r\n", to: channel)
        try respond(channel)
        parked.unpark()
        #expect(throws: HTTPParserError.self) { try channel.throwIfErrorCaught() }
        _ = try? channel.finish()
    }
}
