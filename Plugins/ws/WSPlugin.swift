import Foundation
import NorthstarPluginKit
import PluginAPI

/// The ws transport: its config, its routes and the WebSocket handshake.
///
///     GET /ws                       one socket, many streams (subscribe messages)
///     GET /ws/chat/{thread_id}      one thread, subscribed at the handshake
///     GET /ws/canvas/{canvas_id}    one canvas, likewise
///     GET /ws/gestures/{gesture_id}?speed=1&from_ms=0   a paced replay, likewise
///
/// The handshake authenticates (Authorization, then a `northstar.bearer.<token>`
/// subprotocol, then `?token=` when allowed), checks the Origin, and for a
/// one-stream route subscribes before it accepts, so another tenant's id or a
/// missing one is refused with an HTTP 404 and no socket is ever opened.
final class WSPlugin: @unchecked Sendable {
    enum Route: UInt32 { case multiplexed = 1, chat = 2, canvas = 3, replay = 4 }

    let host: OpaquePointer?
    let allowedOrigins: Set<String>
    let allowQueryToken: Bool
    let maxSubscriptions: Int

    private let lock = NSLock()
    /// Handshakes waiting for authentication or a subscription, by exchange.
    private var handshakes: [OpaquePointer: WSConnection] = [:]

    /// The subprotocol a client names to speak this protocol; a browser
    /// offers it together with its `northstar.bearer.<token>` credential.
    static let subprotocol = "northstar.v1"
    static let bearerPrefix = "northstar.bearer."

    init(host: OpaquePointer?, config: Data) throws {
        self.host = host
        let object = try (config.isEmpty ? [:] : JSONSerialization.jsonObject(with: config)) as? [String: Any] ?? [:]
        let known: Set = ["allowed_origins", "allow_query_token", "max_subscriptions"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw PluginFailure(status: Int32(NS_ERR_CONFIG),
                                message: "unknown key \"\(unknown)\" (known: \(known.sorted().joined(separator: ", ")))")
        }
        guard let origins = (object["allowed_origins"] ?? [String]()) as? [String] else {
            throw PluginFailure(status: Int32(NS_ERR_CONFIG), message: "allowed_origins: a list of origins like \"https://app.example.com\"")
        }
        allowedOrigins = Set(origins)
        guard let query = (object["allow_query_token"] ?? NSNumber(value: false)) as? NSNumber, isBool(query) else {
            throw PluginFailure(status: Int32(NS_ERR_CONFIG), message: "allow_query_token: true or false")
        }
        allowQueryToken = query.boolValue
        guard let number = (object["max_subscriptions"] ?? NSNumber(value: 64)) as? NSNumber, !isBool(number),
              let limit = Int(exactly: number.doubleValue), (1...4096).contains(limit) else {
            throw PluginFailure(status: Int32(NS_ERR_CONFIG), message: "max_subscriptions: an integer from 1 to 4096")
        }
        maxSubscriptions = limit
    }

    /// Mounts the routes (inside `start`).
    func mountRoutes(error: OpaquePointer?) -> ns_status {
        let routes: [(String, Route)] = [("/ws", .multiplexed), ("/ws/chat/{thread_id}", .chat), ("/ws/canvas/{canvas_id}", .canvas),
                                         ("/ws/gestures/{gesture_id}", .replay)]
        for (pattern, route) in routes {
            let status = withNSStr("GET") { method in
                withNSStr(pattern) { api.route_add(host, method, $0, route.rawValue, error) }
            }
            if status != ns_status(NS_OK) { return status }
        }
        return ns_status(NS_OK)
    }

    // MARK: The handshake

    func handle(_ request: UnsafePointer<ns_http_request>, exchange: OpaquePointer?) {
        let request = request.pointee
        let headers = (0..<Int(request.header_count)).map { (request.headers[$0].name.string.lowercased(), request.headers[$0].value.string) }
        func header(_ name: String) -> String? { headers.first { $0.0 == name }?.1 }
        let query = Self.queryItems(request.query.string)

        guard header("upgrade")?.lowercased() == "websocket" else {
            return answer(exchange, 426, "upgrade_required", "this is a WebSocket endpoint: send a WebSocket handshake")
        }
        if let origin = header("origin"), !originAllowed(origin, host: header("host")) {
            return answer(exchange, 403, "origin_not_allowed", "this page's origin is not in allowed_origins")
        }
        let offered = (header("sec-websocket-protocol") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let credential = credential(authorization: header("authorization"), offered: offered, query: query) else {
            return answer(exchange, 401, "unauthorized",
                          "a credential is required (Authorization: Bearer <token>, or the subprotocol \(Self.bearerPrefix)<token>)")
        }
        var stream: String?
        var options = ""
        var after: UInt64 = 0
        switch Route(rawValue: request.route_id) {
        case .chat?: stream = "chat:" + (request.params?[0].string ?? "")
        case .canvas?: stream = "canvas:" + (request.params?[0].string ?? "")
        case .replay?:
            stream = "replay:" + (request.params?[0].string ?? "")
            // The host reads and checks the replay's options; credentials stay out of them.
            options = ["speed", "from_ms", "pace"].compactMap { name in query[name].map { "\(name)=\($0)" } }.joined(separator: "&")
        default: break
        }
        if let text = query["after"] {
            guard stream != nil, !text.isEmpty, text.allSatisfy({ ("0"..."9").contains($0) }), let value = UInt64(text) else {
                return answer(exchange, 400, "invalid_after", "after: the decimal seq of the last event seen (one-stream routes only)")
            }
            after = value
        }
        let connection = WSConnection(plugin: self, exchange: exchange, stream: stream, options: options, after: after,
                                      subprotocol: offered.contains(Self.subprotocol) ? Self.subprotocol : "")
        lock.withLock { if let exchange { handshakes[exchange] = connection } }
        connection.authenticate(credential)
    }

    /// The client left during the handshake: whoever holds the exchange ends it.
    func exchangeClosed(_ exchange: OpaquePointer?) {
        guard let exchange, let connection = lock.withLock({ handshakes[exchange] }) else { return }
        connection.clientLeft()
    }

    func handshakeDone(_ exchange: OpaquePointer) {
        lock.withLock { handshakes[exchange] = nil }
    }

    /// An allowed origin: listed, or the server's own (same host).
    private func originAllowed(_ origin: String, host: String?) -> Bool {
        if allowedOrigins.contains(origin) { return true }
        guard let host, let url = URL(string: origin), let originHost = url.host else { return false }
        let originAuthority = url.port.map { "\(originHost):\($0)" } ?? originHost
        return originAuthority.lowercased() == host.lowercased()
    }

    private func credential(authorization: String?, offered: [String], query: [String: String]) -> (scheme: String, value: String, source: Int32)? {
        if let authorization, let space = authorization.firstIndex(of: " ") {
            return (String(authorization[..<space]), String(authorization[authorization.index(after: space)...]), Int32(NS_CREDENTIAL_HEADER))
        }
        if let bearer = offered.first(where: { $0.hasPrefix(Self.bearerPrefix) }) {
            return ("Bearer", String(bearer.dropFirst(Self.bearerPrefix.count)), Int32(NS_CREDENTIAL_WS_PROTOCOL))
        }
        if allowQueryToken, let token = query["token"] ?? query["access_token"], !token.isEmpty {
            return ("Bearer", token, Int32(NS_CREDENTIAL_QUERY))
        }
        return nil
    }

    private static func queryItems(_ query: String) -> [String: String] {
        var items: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            let name = String(parts[0]).removingPercentEncoding ?? String(parts[0])
            let value = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
            if items[name] == nil { items[name] = value }
        }
        return items
    }
}

/// Answers an exchange with a JSON error and ends it.
func answer(_ exchange: OpaquePointer?, _ status: Int32, _ code: String, _ message: String) {
    let body = Array(#"{"error":{"code":\#(quoted(code)),"message":\#(quoted(message))}}"#.utf8)
    withNSStr("content-type") { name in
        withNSStr("application/json") { value in
            var header = ns_header(name: name, value: value)
            _ = api.response_start(exchange, status, &header, 1)
        }
    }
    withNSBytes(body) { _ = api.response_write(exchange, $0) }
    api.response_end(exchange)
}

/// JSONSerialization reads `true` as an NSNumber; only its type tells it from 1.
func isBool(_ number: NSNumber) -> Bool { String(cString: number.objCType) == "c" }
