import HTTPTypes
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket
@_spi(WSInternal) import WSCore

/// Each connection of the listener: HTTP/1.1, or a WebSocket when a
/// transport accepts the handshake.
///
/// The server library's own upgrade channel answers every declined handshake
/// with a bare 400; a client refused at the handshake must see why (401, 403,
/// 404 with the JSON error), so this channel carries the transport's answer
/// from the handshake decision to the connection and writes it.
struct NorthstarServerChannel: ServerChildChannel, HTTPChannelHandler {
    enum Outcome: Sendable {
        case http(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        case refused(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, WebSocketUpgrade.Refusal)
        case websocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, HostWebSocket)
    }

    struct Value: ServerChildChannelValue {
        let outcome: EventLoopFuture<Outcome>
        let channel: any Channel
        /// The connection's place in the count; nil for one refused at the door.
        let ticket: ConnectionCount.Ticket?
    }

    let responder: HTTPChannelHandler.Responder
    let upgrade: WebSocketUpgrade
    let limits: WebSocketLimits
    let connectionLimits: ConnectionLimits
    let connections: ConnectionCount

    static func builder(upgrade: WebSocketUpgrade, limits: WebSocketLimits, connectionLimits: ConnectionLimits,
                        connections: ConnectionCount) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            NorthstarServerChannel(responder: responder, upgrade: upgrade, limits: limits,
                                   connectionLimits: connectionLimits, connections: connections)
        }
    }

    /// Refuses a connection past the limits with a 503 and closes it,
    /// before any parser or buffer is set up for it.
    private func refuse(_ channel: any Channel, _ refusal: ConnectionCount.Refusal) -> EventLoopFuture<Value> {
        let message = switch refusal {
        case .full: "the server holds as many connections as it takes; retry shortly"
        case .tooManyPending: "too many connections from this address that have not sent a request"
        }
        let bytes = RequestHeadWatcher.errorResponse(.serviceUnavailable, code: "too_many_connections", message: message,
                                                     headers: [("Retry-After", "1")], allocator: channel.allocator)
        channel.writeAndFlush(bytes).whenComplete { _ in channel.close(promise: nil) }
        return channel.eventLoop.makeSucceededFuture(
            Value(outcome: channel.eventLoop.makeFailedFuture(refusal), channel: channel, ticket: nil))
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let ticket: ConnectionCount.Ticket
        do {
            ticket = try connections.admit(address: channel.remoteAddress?.ipAddress ?? "unknown", channel: channel)
        } catch {
            return refuse(channel, error)
        }
        let connections = self.connections
        channel.closeFuture.whenComplete { _ in connections.release(ticket) }
        // Reads start small and grow with what the client sends: a connection
        // that sent one request head and now only listens keeps a small buffer.
        try? channel.syncOptions?.setOption(ChannelOptions.recvAllocator,
                                            value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65536))
        return channel.eventLoop.makeCompletedFuture {
            // What the handshake decided, carried to the pipeline step that follows it.
            let decided = NIOLockedValueBox<WebSocketUpgrade.Decision?>(nil)
            let upgrader = NIOTypedWebSocketServerUpgrader<Outcome>(
                maxFrameSize: limits.maxMessageBytes,
                shouldUpgrade: { channel, head in
                    let promise = channel.eventLoop.makePromise(of: HTTPHeaders?.self)
                    promise.completeWithTask {
                        // Lent like an HTTP request's: a refusal held during the handshake leaves the connection quiet.
                        let decision = await ConnectionCount.Ticket.$current.withValue(ticket) {
                            await upgrade.decide(head, channel: channel)
                        }
                        decided.withLockedValue { $0 = decision }
                        guard case .accept(let socket, let requestID) = decision else { return nil }
                        var headers = HTTPHeaders()
                        if !socket.subprotocol.isEmpty { headers.add(name: "Sec-WebSocket-Protocol", value: socket.subprotocol) }
                        headers.add(name: "x-request-id", value: requestID)
                        return headers
                    }
                    return promise.futureResult
                },
                upgradePipelineHandler: { channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        guard case .accept(let socket, _)? = decided.withLockedValue({ $0 }) else {
                            throw ChannelError.inappropriateOperationForState
                        }
                        try channel.pipeline.syncOperations.addHandler(WebSocketFrameGuard(maxMessageBytes: limits.maxMessageBytes,
                                                                                        hostClosed: { socket.closeSent }))
                        let frames = try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(
                            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                        return .websocket(frames, socket)
                    }
                }
            )
            let upgrading = NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        try channel.pipeline.syncOperations.addHandler(ExpectContinueHandler())
                        try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(logger: logger))
                        try channel.pipeline.syncOperations.addHandler(StreamResponseGate())
                        let http = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                        if case .refuse(let refusal)? = decided.withLockedValue({ $0 }) { return .refused(http, refusal) }
                        return .http(http)
                    }
                }
            )
            var configuration = NIOUpgradableHTTPServerPipelineConfiguration<Outcome>(upgradeConfiguration: upgrading)
            configuration.enablePipelining = false      // requests are taken one at a time below
            configuration.enableErrorHandling = false   // answered by the HTTP handling
            configuration.enableResponseHeaderValidation = false
            let outcome = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: configuration)
            // Limits and timeouts around the parser: raw bytes before it, parsed parts after it.
            let watcher = RequestHeadWatcher(limits: connectionLimits)
            try channel.pipeline.syncOperations.addHandler(watcher, position: .first)
            // Before everything: where streams write their framed bytes, HTTP or WebSocket.
            try channel.pipeline.syncOperations.addHandler(DirectWriter(), position: .first)
            let parser = try channel.pipeline.syncOperations.context(handlerType: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try channel.pipeline.syncOperations.addHandler(
                RequestGuard(limits: connectionLimits, sendTimeout: .seconds(Int64(limits.slowConsumerGraceSeconds)),
                             watcher: watcher, count: connections, ticket: ticket),
                position: .after(parser.handler))
            return Value(outcome: outcome, channel: channel, ticket: ticket)
        }
    }

    /// Each branch is a function of its own, kept out of line: an async
    /// function's frame holds what every branch keeps across its waits, and
    /// the connection's task keeps its deepest frames for as long as it
    /// lives (see `HTTPConnectionLoop`).
    func handle(value: Value, logger: Logger) async {
        guard let outcome = try? await value.outcome.get() else { return }
        switch outcome {
        case .http(let http):
            await HTTPConnectionLoop(http, responder: responder, ticket: value.ticket, logger: logger).serve()
        case .refused(let http, let refusal):
            await answer(http, refusal: refusal)
        case .websocket(let frames, let socket):
            await run(frames, socket: socket, logger: logger)
        }
    }

    /// Answers a refused WebSocket handshake with the transport's answer, then closes.
    @inline(never)
    private func answer(_ http: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, refusal: WebSocketUpgrade.Refusal) async {
        try? await http.executeThenClose { _, outbound in
            var fields = HTTPFields()
            for (name, text) in refusal.headers {
                if let name = HTTPField.Name(name), ![.contentLength, .connection, .transferEncoding].contains(name) {
                    fields.append(HTTPField(name: name, value: text))
                }
            }
            fields[.contentLength] = String(refusal.body.readableBytes)
            fields[.connection] = "close"
            try await outbound.write(contentsOf: [.head(HTTPResponse(status: .init(code: refusal.status), headerFields: fields)),
                                                  .body(refusal.body), .end(nil)])
        }
    }

    /// Runs an accepted WebSocket until it closes.
    @inline(never)
    private func run(_ frames: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, socket: HostWebSocket, logger: Logger) async {
        let configuration = WebSocketHandler.Configuration(
            extensions: [], autoPing: .enabled(timePeriod: .seconds(limits.pingIntervalSeconds)),
            closeTimeout: .seconds(10), validateUTF8: true, maxFrameSize: limits.maxMessageBytes)
        _ = try? await WebSocketHandler.handle(
            type: .server, configuration: configuration, asyncChannel: frames, context: SocketContext(logger: logger),
            handler: { inbound, outbound, _ in await socket.run(inbound: inbound, outbound: outbound) })
        socket.abandon()  // a no-op when `run` finished it
    }
}

/// The context WSCore hands a WebSocket handler.
private struct SocketContext: WebSocketContext {
    let logger: Logger
}
