import Foundation
import Hummingbird
import HTTPTypes
import NIOCore
import PluginAPI

/// Serves a transport plugin's route: hands the request to the plugin,
/// waits for its answer, and streams what it writes to the client, or, for
/// a WebSocket handshake the plugin accepts, hands over the socket.
struct TransportBridge: Sendable {
    let plugin: PluginInstance
    let route: TransportRoute
    let limits: WebSocketLimits
    /// Every exchange not finished yet, for the drain at shutdown.
    let openExchanges: OpenExchanges
    /// How long a plugin may take to start its answer.
    let answerTimeout: TimeAmount = .seconds(30)

    /// The HTTP route.
    func respond(to request: Request, context: NorthstarRequestContext) async throws -> Response {
        if plugin.handlesWebSockets, request.headers[.upgrade]?.lowercased() == "websocket",
           request.headers[.connection]?.lowercased().contains("upgrade") == true {
            // A connection is HTTP for good once its first request was: a handshake sent after another
            // request on it (a proxy reusing a kept-alive upstream connection) cannot upgrade it. Said so,
            // before the plugin is asked for a socket it cannot have.
            throw KernelError.invalid("websocket_not_first_request",
                                      "a WebSocket handshake must be the first request on its connection; open a new one "
                                          + "(a proxy must not send it over a kept-alive upstream connection: see docs/cluster.md)")
        }
        let exchange = Exchange(plugin: plugin, route: route, sink: limits.sink(on: context.channel),
                                openExchanges: openExchanges)
        guard exchange.register() else {
            exchange.sink.stopWatching()
            throw Self.draining
        }
        hand(request.head, parameters: route.parameterNames.map { context.parameters.get($0) ?? "" }, to: exchange)
        guard case .respond(let head) = await decision(of: exchange) else {
            exchange.markFinished()
            exchange.sink.stopWatching()
            // Nobody reads this answer: counted as nginx counts it, not logged as the plugin's failure.
            if exchange.clientHasLeft { return Response(status: .init(code: 499, reasonPhrase: "Client Closed Request")) }
            throw KernelError(.timeout, code: "transport_no_answer", message: "the \(plugin.name) transport did not answer")
        }
        return response(head, streaming: exchange)
    }

    /// The answer to a request that arrives after the node ended its exchanges.
    static let draining = KernelError(.unavailable, code: "server_draining",
                                      message: "the server is shutting down; retry on another node")

    /// What the plugin made of a WebSocket handshake on this route.
    enum HandshakeAnswer {
        case accepted(HostWebSocket)
        /// Refused with an HTTP answer: its head and whole (small) body.
        case refused(status: Int, headers: [(String, String)], body: ByteBuffer)
    }

    func handshake(_ head: HTTPRequest, parameters: [String], channel: any Channel) async -> HandshakeAnswer {
        let exchange = Exchange(plugin: plugin, route: route, sink: limits.sink(on: channel),
                                openExchanges: openExchanges, webSocketLimits: limits)
        defer { exchange.markFinished() }  // the socket, if accepted, is tracked as a WebSocket from here
        guard exchange.register() else {
            exchange.sink.stopWatching()
            let body = ByteBuffer(string: #"{"error":{"code":"server_draining","message":"the server is shutting down; retry on another node"}}"#)
            return .refused(status: 503, headers: [("content-type", "application/json")], body: body)
        }
        hand(head, parameters: parameters, to: exchange)
        switch await decision(of: exchange) {
        case .upgrade(let socket)?:
            return .accepted(socket)
        case .respond(let answer)?:
            // A refusal is a short JSON error: read it whole, within bounds of
            // size and time (a plugin that never ends it does not hang the handshake).
            let timeout = exchange.sink.eventLoop.scheduleTask(in: answerTimeout) { exchange.clientGone() }
            await exchange.waitForEnd()
            timeout.cancel()
            exchange.clientGone()  // the refusal is read whole: nothing more is taken
            exchange.sink.stopWatching()
            return .refused(status: answer.status, headers: answer.headers, body: exchange.takeBody(maxBytes: 65536))
        case nil:
            exchange.sink.stopWatching()
            let body = ByteBuffer(string: #"{"error":{"code":"transport_no_answer","message":"the transport did not answer"}}"#)
            return .refused(status: 504, headers: [("content-type", "application/json")], body: body)
        }
    }

    /// The plugin's answer, or nil when it gave none in time (it is then
    /// told the client is gone).
    private func decision(of exchange: Exchange) async -> Exchange.Decision? {
        // A timer on the loop, not a task group: nothing more stays per connection.
        let (plugin, route, seconds) = (plugin, route, answerTimeout.nanoseconds / 1_000_000_000)
        let timeout = exchange.sink.eventLoop.scheduleTask(in: answerTimeout) {
            plugin.library.handle.logger.warning("a transport did not answer within \(seconds) s; the client is answered 504 transport_no_answer",
                                                 metadata: ["plugin": "\(plugin.name)", "route": "\(route.method) \(route.pattern)"])
            exchange.clientGone()
        }
        let decision = await exchange.waitForDecision()
        timeout.cancel()
        if decision == nil { exchange.clientGone() }
        return decision
    }

    private func response(_ head: Exchange.Head, streaming exchange: Exchange) -> Response {
        var fields = HTTPFields()
        for (name, value) in head.headers {
            if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) }
        }
        // The body goes straight to the socket, in order with the live events
        // the host writes there (see `ConnectionSink`); the writer ends it.
        return Response(status: .init(code: head.status), headers: fields, body: ResponseBody { writer in
            await exchange.streamBody()
            try await writer.finish(nil)  // held back by the connection until the stream ends
        })
    }

    /// Path and query of a request target.
    static func split(_ target: String?) -> (path: String, query: String) {
        let target = target ?? "/"
        guard let mark = target.firstIndex(of: "?") else { return (target, "") }
        return (String(target[..<mark]), String(target[target.index(after: mark)...]))
    }

    /// Calls the plugin's `on_request` with views of the request.
    private func hand(_ request: HTTPRequest, parameters: [String], to exchange: Exchange) {
        let arena = StringArena()
        let (pathText, queryText) = Self.split(request.path)
        var headers = request.headerFields.map { ns_header(name: arena.view($0.name.rawName), value: arena.view($0.value)) }
        // HTTP/1.1's Host header travels as the request's authority here; a
        // plugin sees it as the header it was sent as (same-origin checks need it).
        if let authority = request.authority, request.headerFields[.init("host")!] == nil {
            headers.append(ns_header(name: arena.view("host"), value: arena.view(authority)))
        }
        let params = parameters.map(arena.view)
        let path = arena.view(pathText)
        let query = arena.view(queryText)
        let method = arena.view(request.method.rawValue)
        let requestID = arena.view(RequestFacts.current?.requestID ?? TraceContext.requestID(from: request.headerFields[.requestID]))
        let pointer = exchange.retainForPlugin()
        headers.withUnsafeBufferPointer { headerViews in
            params.withUnsafeBufferPointer { paramViews in
                var view = ns_http_request(
                    struct_size: UInt32(MemoryLayout<ns_http_request>.size), route_id: route.routeID, method: method,
                    path: path, query: query, headers: headerViews.baseAddress, header_count: UInt32(headerViews.count),
                    params: paramViews.baseAddress, param_count: UInt32(paramViews.count), request_id: requestID)
                withUnsafePointer(to: &view) { request in
                    RequestViews.whileOpen(request, arena: arena) {
                        exchange.handToPlugin { plugin.onRequest(request, exchange: pointer) }
                    }
                }
            }
        }
    }
}
