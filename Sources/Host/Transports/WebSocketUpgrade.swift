import HTTPTypes
import NIOCore
import NIOHTTP1

/// Decides each WebSocket handshake: the transport whose route matches gets
/// the request as for any other, and either accepts the socket or answers
/// with HTTP (401, 403, 404), which the connection then writes. Either
/// answer carries the request's id (`x-request-id`), as every REST answer
/// does.
struct WebSocketUpgrade: Sendable {
    /// An HTTP answer to a handshake, whole (it is a short JSON error).
    struct Refusal: Sendable {
        let status: Int
        let headers: [(String, String)]
        let body: ByteBuffer
    }

    enum Decision: Sendable {
        case accept(HostWebSocket, requestID: String)
        case refuse(Refusal)
    }

    let bridges: [TransportBridge]
    let live: LiveWebSockets
    /// An accepted socket whose handshake never completes is closed for the
    /// plugin after this long, so its state is not kept forever.
    let handshakeTimeout: Duration = .seconds(10)

    func decide(_ head: HTTPRequestHead, channel: any Channel) async -> Decision {
        let request = Self.request(head)
        let facts = RequestFacts(headers: request.headerFields)
        let path = TransportBridge.split(request.path).path
        guard request.method == .get,
              let bridge = bridges.first(where: { $0.plugin.handlesWebSockets && $0.route.match(path) != nil }),
              let parameters = bridge.route.match(path) else {
            let body = ByteBuffer(string: #"{"error":{"code":"not_found","message":"no WebSocket endpoint at this path"}}"#)
            return .refuse(Refusal(status: 404, headers: [("content-type", "application/json"), ("x-request-id", facts.requestID)], body: body))
        }
        // The plugin's calls back while it decides (authenticate) belong to this request.
        let answer = await RequestFacts.$current.withValue(facts) {
            await bridge.handshake(request, parameters: parameters, channel: channel)
        }
        switch answer {
        case .refused(let status, let headers, let body):
            let fields = headers.filter { $0.0.lowercased() != "x-request-id" } + [("x-request-id", facts.requestID)]
            return .refuse(Refusal(status: status, headers: fields, body: body))
        case .accepted(let socket):
            socket.identity = facts.identity
            live.add(socket)
            let timeout = handshakeTimeout
            Task {
                try? await Task.sleep(for: timeout)
                if !socket.hasStarted { socket.abandon() }
            }
            return .accept(socket, requestID: facts.requestID)
        }
    }

    /// The handshake as the transports see every request.
    private static func request(_ head: HTTPRequestHead) -> HTTPRequest {
        var fields = HTTPFields()
        for (name, value) in head.headers {
            if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
        }
        return HTTPRequest(method: HTTPRequest.Method(head.method.rawValue) ?? .get, scheme: nil,
                           authority: head.headers["host"].first, path: head.uri, headerFields: fields)
    }
}
