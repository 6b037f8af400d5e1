import Foundation
import NorthstarPluginKit
import PluginAPI

/// One client: the handshake, then the socket and its subscriptions.
///
/// Host callbacks arrive on several threads (authentication, subscription
/// deliveries, kernel answers, the socket's reader), so `lock` guards the
/// state, and every call that hands the socket to the host (send, close)
/// is made under it: `on_ws_closed` takes the same lock, so the socket is
/// never used after it is gone. Host calls that may wait for a callback
/// (`subscription_cancel`) are made without the lock.
///
/// OWNERSHIP: one reference is held from the handshake until the exchange
/// is answered, or, once accepted, until `on_ws_closed`.
final class WSConnection: @unchecked Sendable {
    let plugin: WSPlugin
    /// The stream of a one-stream route, subscribed during the handshake.
    let routeStream: String?
    /// A replay route's options (`speed=2&from_ms=100`).
    let routeOptions: String
    let after: UInt64
    let subprotocol: String

    let lock = NSLock()
    private var exchange: OpaquePointer?
    private var socket: OpaquePointer?
    /// The host's principal handle for this socket (renewed in place by `auth`).
    var principal: OpaquePointer?
    private var subscriptions: [String: StreamSubscriber] = [:]
    /// Replays paused by the client: where each stopped, and its options.
    private var paused: [String: (after: UInt64, options: String)] = [:]
    private var closed = false

    init(plugin: WSPlugin, exchange: OpaquePointer?, stream: String?, options: String = "", after: UInt64, subprotocol: String) {
        self.plugin = plugin
        self.exchange = exchange
        self.routeStream = stream
        routeOptions = options
        self.after = after
        self.subprotocol = subprotocol
    }

    var pointer: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    static func from(_ pointer: UnsafeRawPointer?) -> WSConnection {
        Unmanaged<WSConnection>.fromOpaque(pointer!).takeUnretainedValue()
    }

    // MARK: Handshake

    func authenticate(_ credential: (scheme: String, value: String, source: Int32)) {
        let retained = Unmanaged.passRetained(self).toOpaque()  // the handshake's reference
        withNSStr(credential.scheme) { scheme in
            withNSStr(credential.value) { value in
                var presented = ns_credential(struct_size: UInt32(MemoryLayout<ns_credential>.size),
                                              source: credential.source, scheme: scheme, value: value)
                api.authenticate(plugin.host, &presented, onAuthenticated, retained)
            }
        }
    }

    func authenticated(_ status: ns_status, _ principal: OpaquePointer?, _ message: String) {
        guard status == ns_status(NS_OK), let principal else {
            switch status {
            case ns_status(NS_ERR_TOO_LARGE): refuse(429, "too_many_user_connections", message)  // the user holds the node's limit
            case ns_status(NS_ERR_TENANT_LIMIT): refuse(429, "too_many_tenant_connections", message)  // so does the tenant (1.5)
            case ns_status(NS_ERR_UNAVAILABLE): refuse(503, "auth_unavailable", message)
            default: refuse(401, "unauthorized", message)
            }
            return
        }
        lock.withLock { self.principal = principal }
        if let stream = routeStream {
            subscribe(stream, after: after, requestID: nil, options: routeOptions)
        } else {
            accept()
        }
    }

    /// Answers the handshake with HTTP and drops the handshake's reference.
    private func refuse(_ status: Int32, _ code: String, _ message: String) {
        if let exchange = takeExchange() { answer(exchange, status, code, message) }
        teardown()
        Unmanaged.passUnretained(self).release()
    }

    /// Upgrades; the handshake's reference now belongs to the socket.
    private func accept() {
        let accepted: Bool = lock.withLock {
            guard let exchange, !closed else { return false }
            self.exchange = nil
            var socket: OpaquePointer?
            let status = withNSStr(subprotocol) { api.websocket_accept(exchange, $0, pointer, &socket) }
            plugin.handshakeDone(exchange)
            guard status == ns_status(NS_OK) else {
                api.response_end(exchange)  // not consumed: the client left
                return false
            }
            self.socket = socket
            return true
        }
        if !accepted {
            teardown()
            Unmanaged.passUnretained(self).release()
        }
    }

    /// `on_exchange_closed` during the handshake.
    func clientLeft() {
        if let exchange = takeExchange() { api.response_end(exchange) }
    }

    private func takeExchange() -> OpaquePointer? {
        let taken: OpaquePointer? = lock.withLock {
            defer { exchange = nil }
            return exchange
        }
        if let taken { plugin.handshakeDone(taken) }
        return taken
    }

    // MARK: Messages from the client

    func received(_ opcode: ns_ws_opcode, _ payload: Data) {
        guard opcode == ns_ws_opcode(NS_WS_TEXT) else {
            return send(error: "null", code: "binary_not_supported", message: "messages are JSON text")
        }
        let (id, parsed) = WSMessage.parse(payload)
        switch parsed {
        case .failure(let refusal):
            send(error: id, code: refusal.code, message: refusal.message)
        case .success(.subscribe(let stream, let after)):
            subscribe(stream, after: after, requestID: id)
        case .success(.unsubscribe(let stream)):
            unsubscribe(stream, requestID: id)
        case .success(.kernel(let operation, let target, let body)):
            let call = Unmanaged.passRetained(KernelCall(connection: self, requestID: id, operation: operation)).toOpaque()
            let principal = lock.withLock { self.principal }
            withNSStr(operation) { name in
                withNSStr(target) { target in
                    withNSBytes(Array(body)) { api.kernel_call(plugin.host, principal, name, target, $0, onKernelDone, call) }
                }
            }
        case .success(.ping):
            sendText(#"{"type":"pong","id":\#(id)}"#)
        case .success(.replay(let gestureID, let options, let after)):
            lock.withLock { _ = paused.removeValue(forKey: gestureID) }
            subscribe("replay:\(gestureID)", after: after, requestID: id, options: options)
        case .success(.pauseReplay(let gestureID)):
            pauseReplay(gestureID, requestID: id)
        case .success(.resumeReplay(let gestureID)):
            guard let state = lock.withLock({ paused.removeValue(forKey: gestureID) }) else {
                return send(error: id, code: "not_paused", message: "no paused replay of \(gestureID)")
            }
            subscribe("replay:\(gestureID)", after: state.after, requestID: id, options: state.options)
        case .success(.auth(let token)):
            renew(token: token, requestID: id)
        }
    }

    /// Stops a replay where it is; `replay.resume` goes on from the next sample.
    private func pauseReplay(_ gestureID: String, requestID: String) {
        let key = "replay:\(gestureID)"
        let subscriber: StreamSubscriber? = lock.withLock {
            guard let subscriber = subscriptions[key], subscriber.subscription != nil else { return nil }
            subscriptions[key] = nil
            return subscriber
        }
        guard let subscriber, let subscription = subscriber.subscription else {
            return send(error: requestID, code: "not_replaying", message: "no replay of \(gestureID) is playing")
        }
        api.subscription_cancel(subscription)
        // Read after the cancel: no delivery can move it any more.
        let last = lock.withLock { subscriber.lastSeq }
        // Keep the pace, drop `from_ms`: the position is now the last seq.
        let options = subscriber.options.split(separator: "&").filter { $0.hasPrefix("speed=") }.joined(separator: "&")
        lock.withLock { paused[gestureID] = (last, options) }
        Unmanaged.passUnretained(subscriber).release()
        sendText(#"{"type":"paused","id":\#(requestID),"gesture_id":\#(quoted(gestureID)),"last_seq":\#(last)}"#)
    }

    // MARK: Subscriptions

    private func subscribe(_ stream: String, after: UInt64, requestID: String?, options: String = "") {
        let subscriber = StreamSubscriber(connection: self, stream: stream, requestID: requestID, options: options)
        subscriber.lastSeq = after  // where to resume from if the stream ends before its next event
        let refusal: (String, String)? = lock.withLock {
            if closed { return ("closed", "the socket is closing") }
            if subscriptions[stream] != nil { return ("already_subscribed", "already subscribed to \(stream)") }
            if subscriptions.count >= plugin.maxSubscriptions {
                return ("too_many_subscriptions", "at most \(plugin.maxSubscriptions) streams per socket")
            }
            subscriptions[stream] = subscriber
            return nil
        }
        if let (code, message) = refusal {
            return send(error: requestID ?? "null", code: code, message: message)
        }
        // The host writes live events to the socket itself (before the
        // upgrade, the handshake's exchange names the socket it becomes).
        let (principal, exchange, socket) = lock.withLock { (self.principal, self.exchange, self.socket) }
        var callbacks = ns_subscriber(struct_size: UInt32(MemoryLayout<ns_subscriber>.size),
                                      context: Unmanaged.passRetained(subscriber).toOpaque(),
                                      on_event: onEvent, on_gap: onGap, on_end: onEnd, on_refused: onRefused,
                                      exchange: socket == nil ? exchange : nil, websocket: socket, on_live: nil)
        withNSStr(options.isEmpty ? stream : "\(stream)?\(options)") { api.subscribe(plugin.host, principal, $0, after, &callbacks, onSubscribed) }
    }

    func subscribed(_ subscriber: StreamSubscriber, _ status: ns_status, _ subscription: OpaquePointer?, _ message: String) {
        let stillWanted: Bool = lock.withLock {
            guard status == ns_status(NS_OK), !closed, subscriptions[subscriber.stream] === subscriber else {
                if subscriptions[subscriber.stream] === subscriber { subscriptions[subscriber.stream] = nil }
                return false
            }
            subscriber.subscription = subscription
            // Answered under the lock that recorded the subscription: an
            // unsubscribe sent right after it finds the subscription only
            // now, so its answer can only follow this one.
            if !subscriber.isRouteStream {
                sendTextLocked(#"{"type":"subscribed","id":\#(subscriber.requestID ?? "null"),"stream":\#(quoted(subscriber.stream))}"#)
            }
            return true
        }
        guard stillWanted else {
            if let subscription { api.subscription_cancel(subscription) }
            if status != ns_status(NS_OK) {
                subscribeFailed(subscriber, status, message)
            } else if subscriber.unsubscribeID != nil {
                sendText(#"{"type":"subscribed","id":\#(subscriber.requestID ?? "null"),"stream":\#(quoted(subscriber.stream))}"#)
            }
            // Both requests are answered, in the order they were sent.
            if let unsubscribeID = lock.withLock({ subscriber.unsubscribeID }) {
                sendText(#"{"type":"unsubscribed","id":\#(unsubscribeID),"stream":\#(quoted(subscriber.stream))}"#)
            }
            Unmanaged.passUnretained(subscriber).release()
            return
        }
        if subscriber.isRouteStream { accept() }
    }

    private func subscribeFailed(_ subscriber: StreamSubscriber, _ status: ns_status, _ message: String) {
        let httpStatus: Int32 = switch Int(status) {
        case Int(NS_ERR_NOT_FOUND): 404
        case Int(NS_ERR_DENIED): 403
        case Int(NS_ERR_EXPIRED): 401
        case Int(NS_ERR_INVALID_ARGUMENT): 400
        default: 503
        }
        // The host named the refusal's code through `on_refused` (ABI 1.2).
        let code = subscriber.refusalCode ?? "unavailable"
        if subscriber.isRouteStream {
            refuse(httpStatus, code, message)
        } else {
            send(error: subscriber.requestID ?? "null", code: code, message: message)
        }
    }

    private func unsubscribe(_ stream: String, requestID: String) {
        let subscriber: StreamSubscriber? = lock.withLock {
            defer { subscriptions[stream] = nil }
            // A subscription still being made is cancelled by its completion,
            // which then answers the subscribe and this unsubscribe in order.
            if let pending = subscriptions[stream], pending.subscription == nil { pending.unsubscribeID = requestID }
            return subscriptions[stream]
        }
        guard let subscriber else {
            return send(error: requestID, code: "not_subscribed", message: "not subscribed to \(stream)")
        }
        guard let subscription = subscriber.subscription else { return }
        api.subscription_cancel(subscription)
        Unmanaged.passUnretained(subscriber).release()
        sendText(#"{"type":"unsubscribed","id":\#(requestID),"stream":\#(quoted(stream))}"#)
    }

    func deliver(_ frame: [UInt8], seq: UInt64, from subscriber: StreamSubscriber) {
        lock.withLock {
            guard let socket, !closed else { return }
            let status = withNSBytes(frame) { api.websocket_send(socket, ns_ws_opcode(NS_WS_TEXT), $0) }
            if status == ns_status(NS_ERR_TOO_LARGE) {
                closeLocked(4008, "slow consumer: the send queue is full; reconnect and resume each stream after its last seq")
            } else {
                subscriber.lastSeq = seq
            }
        }
    }

    func gap(_ subscriber: StreamSubscriber, requestedAfter: UInt64, firstSeq: UInt64) {
        sendText(#"{"type":"gap","stream":\#(quoted(subscriber.stream)),"requested_after":\#(requestedAfter),"first_seq":\#(firstSeq)}"#)
    }

    /// The host ended a subscription by itself (slow consumer, shutdown, log error).
    func ended(_ subscriber: StreamSubscriber, _ status: ns_status, _ message: String) {
        let code = switch Int(status) {
        case Int(NS_OK): "complete"
        case Int(NS_ERR_TOO_LARGE): "slow_consumer"
        case Int(NS_ERR_CANCELLED): "server_closed"
        case Int(NS_ERR_EXPIRED): "token_expired"
        default: "unavailable"
        }
        let owned: Bool = lock.withLock {
            guard subscriptions[subscriber.stream] === subscriber else { return false }
            subscriptions[subscriber.stream] = nil
            return true
        }
        // Live events the host wrote itself count too (ABI 1.3).
        var last = lock.withLock { subscriber.lastSeq }
        if let subscription = subscriber.subscription, api.struct_size >= UInt32(NS_HOST_API_SIZE_1_3),
           let position = api.subscription_position {
            last = max(last, position(subscription))
        }
        sendText(#"{"type":"end","stream":\#(quoted(subscriber.stream)),"code":\#(quoted(code)),"last_seq":\#(last),"message":\#(quoted(message))}"#)
        if routeStream == subscriber.stream || code == "slow_consumer" {
            // A slow consumer's whole socket is behind, not one stream: close it.
            let close: UInt16 = switch code {
            case "complete": 1000
            case "server_closed": 1001
            case "slow_consumer": 4008
            case "token_expired": 4001
            default: 1011
            }
            lock.withLock { closeLocked(close, message) }
        }
        if owned, let subscription = subscriber.subscription {
            api.subscription_cancel(subscription)  // allowed from inside its own callback
            Unmanaged.passUnretained(subscriber).release()
        }
    }

    // MARK: Sending

    func sendText(_ text: String) {
        lock.withLock { sendTextLocked(text) }
    }

    /// `sendText` with `lock` held.
    private func sendTextLocked(_ text: String) {
        guard let socket, !closed else { return }
        let status = withNSBytes(Array(text.utf8)) { api.websocket_send(socket, ns_ws_opcode(NS_WS_TEXT), $0) }
        if status == ns_status(NS_ERR_TOO_LARGE) {
            closeLocked(4008, "slow consumer: the send queue is full; reconnect and resume each stream after its last seq")
        }
    }

    func send(error id: String, code: String, message: String) {
        sendText(#"{"type":"error","id":\#(id),"error":{"code":\#(quoted(code)),"message":\#(quoted(message))}}"#)
    }

    /// Sends a kernel answer: `ack` with the REST answer, or `error` with the REST error.
    func kernelAnswered(_ call: KernelCall, status: Int32, json: String) {
        // `op` names the client's message type, not the kernel's operation.
        let op = switch call.operation {
        case "chat.post": "post"
        case "canvas.command": "command"
        case "gesture.append": "gesture.samples"
        default: call.operation  // gesture.start, gesture.end
        }
        if (200..<300).contains(status) {
            sendText(#"{"type":"ack","id":\#(call.requestID),"op":"\#(op)","status":\#(status),"result":\#(json)}"#)
        } else {
            // The REST error body is {"error": {...}}: its object is passed on as is.
            let inner = json.hasPrefix(#"{"error":"#) && json.hasSuffix("}") ? String(json.dropFirst(9).dropLast()) : json
            sendText(#"{"type":"error","id":\#(call.requestID),"op":"\#(op)","status":\#(status),"error":\#(inner)}"#)
        }
    }

    private func closeLocked(_ code: UInt16, _ reason: String) {
        guard let socket, !closed else { return }
        withNSStr(reason) { api.websocket_close(socket, code, $0) }
    }

    // MARK: The end

    /// `on_ws_closed`: the socket is gone; drops the socket's reference.
    func socketClosed() {
        lock.withLock {
            closed = true
            socket = nil
        }
        teardown()
        Unmanaged.passUnretained(self).release()
    }

    /// Cancels every subscription and releases the principal.
    private func teardown() {
        let (active, principal): ([StreamSubscriber], OpaquePointer?) = lock.withLock {
            closed = true
            defer { subscriptions.removeAll(); self.principal = nil }
            return (Array(subscriptions.values), self.principal)
        }
        for subscriber in active {
            // One still being made is cancelled by its completion (it sees `closed`).
            guard let subscription = subscriber.subscription else { continue }
            api.subscription_cancel(subscription)
            Unmanaged.passUnretained(subscriber).release()
        }
        api.principal_release(principal)
    }
}

/// One stream a socket follows; the context of its host callbacks.
final class StreamSubscriber: @unchecked Sendable {
    let connection: WSConnection
    let stream: String
    /// The subscribe message's id; nil for a one-stream route's own stream.
    let requestID: String?
    /// Set once the host answered (under the connection's lock).
    var subscription: OpaquePointer?
    /// The last seq queued to the socket, named when the stream ends.
    var lastSeq: UInt64 = 0
    /// The stable code of a refused subscribe, from `on_refused`.
    var refusalCode: String?
    /// An unsubscribe that came while the host was still making the
    /// subscription: answered once the subscribe is (under the connection's lock).
    var unsubscribeID: String?
    /// A replay's options (`speed=2&from_ms=100`); empty for a live stream.
    let options: String
    /// The stream the socket's route named, opened with the socket rather
    /// than by a subscribe message: it is answered by accepting the upgrade.
    var isRouteStream: Bool { requestID == nil && stream == connection.routeStream }

    init(connection: WSConnection, stream: String, requestID: String?, options: String = "") {
        self.connection = connection
        self.stream = stream
        self.requestID = requestID
        self.options = options
    }
}

/// One kernel call in flight: the context of its completion.
final class KernelCall {
    let connection: WSConnection
    let requestID: String
    let operation: String

    init(connection: WSConnection, requestID: String, operation: String) {
        self.connection = connection
        self.requestID = requestID
        self.operation = operation
    }
}
