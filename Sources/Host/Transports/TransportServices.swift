import Foundation
import HTTPTypes
import NIOCore
import NIOPosix
import NorthstarPluginKit
import PluginAPI

/// Host services for transport plugins: routes and responses, identity,
/// subscriptions, kernel calls and timers. Transports reach streams only
/// through these: they never read the log or check ownership themselves.
enum TransportServices {
    static func install(into table: inout ns_host_api) {
        table.route_add = { host, method, pattern, routeID, error in addRoute(host, method, pattern, routeID, error) }
        table.response_start = { exchange, status, headers, count in startResponse(exchange, status, headers, count) }
        table.response_write = { exchange, bytes in
            guard let exchange = Exchange.from(exchange) else { return ns_status(NS_ERR_INVALID_ARGUMENT) }
            // One copy, straight from the plugin's view into the connection's buffer.
            let buffer = bytes.ptr.map { ByteBuffer(bytes: UnsafeRawBufferPointer(start: $0, count: Int(bytes.len))) } ?? ByteBuffer()
            switch exchange.write(buffer) {
            case .queued: return ns_status(NS_OK)
            case .full: return ns_status(NS_ERR_TOO_LARGE)
            case .closed: return ns_status(NS_ERR_CANCELLED)
            case .misuse: return ns_status(NS_ERR_INVALID_ARGUMENT)
            }
        }
        table.response_end = { exchange in Exchange.from(exchange)?.end() }
        table.websocket_accept = { exchange, subprotocol, conn, out in
            guard let exchange = Exchange.from(exchange), let out else { return ns_status(NS_ERR_INVALID_ARGUMENT) }
            switch exchange.accept(subprotocol: subprotocol.string, conn: conn) {
            case .accepted(let socket):
                out.pointee = OpaquePointer(Unmanaged.passUnretained(socket).toOpaque())
                return ns_status(NS_OK)
            case .notHandshake: return ns_status(NS_ERR_INVALID_ARGUMENT)
            case .gone: return ns_status(NS_ERR_CANCELLED)
            }
        }
        table.websocket_send = { socket, opcode, payload in
            guard let socket = HostWebSocket.from(socket) else { return ns_status(NS_ERR_INVALID_ARGUMENT) }
            let buffer = payload.ptr.map { ByteBuffer(bytes: UnsafeRawBufferPointer(start: $0, count: Int(payload.len))) } ?? ByteBuffer()
            switch socket.send(opcode, buffer) {
            case .queued: return ns_status(NS_OK)
            case .full: return ns_status(NS_ERR_TOO_LARGE)
            case .closed: return ns_status(NS_ERR_CANCELLED)
            }
        }
        table.websocket_close = { socket, code, reason in HostWebSocket.from(socket)?.close(code: code, reason: reason.string) }
        table.authenticate = { host, credential, done, context in authenticate(host, credential, done, context) }
        table.principal_release = { principal in PrincipalHandles.release(principal) }
        table.principal_renew = { host, principal, credential, done, context in renew(host, principal, credential, done, context) }
        table.subscribe = { host, principal, stream, after, subscriber, done in
            subscribe(host, principal, stream, after, subscriber, done)
        }
        table.subscription_cancel = { subscription in
            guard let subscription else { return }
            let hosted = Unmanaged<HostSubscription>.fromOpaque(UnsafeRawPointer(subscription))
            hosted.takeUnretainedValue().cancel()
            hosted.release()
        }
        table.subscription_position = { subscription in
            guard let subscription else { return 0 }
            return Unmanaged<HostSubscription>.fromOpaque(UnsafeRawPointer(subscription)).takeUnretainedValue().position
        }
        table.kernel_call = { host, principal, operation, target, body, done, context in
            kernelCall(host, principal, operation, target, body, done, context)
        }
        table.timer_start = { _, interval, fire, context in
            guard interval >= 10, let fire else { return nil }
            return HostTimer(interval: .milliseconds(Int64(interval)), fire: fire, context: context).retainForPlugin()
        }
        table.timer_cancel = { timer in HostTimer.cancel(timer) }
        // ABI 1.4
        table.timer_once = { _, delay, fire, context in
            guard delay >= 1, let fire else { return nil }
            return HostTimer(once: .milliseconds(Int64(delay)), fire: fire, context: context).retainForPlugin()
        }
        table.exchange_set_context = { exchange, context in Exchange.from(exchange)?.pluginContext = context }
        table.exchange_context = { exchange in Exchange.from(exchange)?.pluginContext }
        table.response_error = { exchange, status, code, message in
            Exchange.from(exchange)?.answerError(status: Int(status), code: code.string, message: message.string)
        }
        RequestViews.install(into: &table)
    }
}

/// A plugin's completion and context, carried across a task.
struct Callback<Function>: @unchecked Sendable {
    let function: Function
    let context: UnsafeMutableRawPointer?
}

private func addRoute(_ host: OpaquePointer?, _ method: ns_str, _ pattern: ns_str, _ routeID: UInt32,
                      _ error: OpaquePointer?) -> ns_status {
    guard let handle = PluginHandle.from(host), let parsed = HTTPRequest.Method(method.string),
          TransportRoute.isValid(pattern.string) else {
        ErrorSlot.from(error)?.message = "route_add needs a method and a pattern like /sse/chat/{thread_id}"
        return ns_status(NS_ERR_INVALID_ARGUMENT)
    }
    handle.addRoute(TransportRoute(method: parsed, pattern: pattern.string, routeID: routeID))
    return ns_status(NS_OK)
}

private func startResponse(_ exchange: OpaquePointer?, _ status: Int32, _ headers: UnsafePointer<ns_header>?,
                           _ count: UInt32) -> ns_status {
    guard let exchange = Exchange.from(exchange) else { return ns_status(NS_ERR_INVALID_ARGUMENT) }
    let pairs = (0..<Int(count)).compactMap { index in headers.map { ($0[index].name.string, $0[index].value.string) } }
    switch exchange.start(status: Int(status), headers: pairs) {
    case .started: return ns_status(NS_OK)
    case .gone: return ns_status(NS_ERR_CANCELLED)
    case .misuse: return ns_status(NS_ERR_INVALID_ARGUMENT)
    }
}

private func subscribe(_ host: OpaquePointer?, _ principal: OpaquePointer?, _ stream: ns_str, _ after: UInt64,
                       _ subscriber: UnsafePointer<ns_subscriber>?, _ done: ns_subscribe_done?) {
    guard let done, let subscriber else { return }
    guard let copied = PluginStruct.copy(subscriber, minimumSize: Int(NS_SUBSCRIBER_MIN_SIZE)) else {
        withNSStr("ns_subscriber.struct_size is below the 1.0 size") { done(subscriber.pointee.context, ns_status(NS_ERR_INVALID_ARGUMENT), nil, $0) }
        return
    }
    let copy = Callback(function: copied, context: copied.context)
    let callback = Callback(function: done, context: copy.context)
    // A 1.2 subscriber gets a refusal's code as a field (`on_refused`); an
    // older one reads it from a 400's message, "<code>: <why>".
    let onRefused = PluginStruct.covers(copied, through: \.on_refused) ? copied.on_refused : nil
    let refuse: @Sendable (Int, String, String) -> Void = { status, code, message in
        if let onRefused {
            withNSStr(code) { onRefused(callback.context, $0) }
            withNSStr(message) { callback.function(callback.context, ns_status(status), nil, $0) }
        } else {
            let text = status == NS_ERR_INVALID_ARGUMENT ? "\(code): \(message)" : message
            withNSStr(text) { callback.function(callback.context, ns_status(status), nil, $0) }
        }
    }
    guard let kernel = PluginHandle.from(host)?.kernel else {
        return refuse(NS_ERR_INVALID_ARGUMENT, "invalid_host", "subscribe needs the host handle given to init")
    }
    guard let principal = PrincipalHandles.find(principal) else {
        return refuse(NS_ERR_INVALID_ARGUMENT, "invalid_principal", "not a live principal: released, or never given by authenticate")
    }
    let context = principal.context
    guard !context.isExpired() else {
        return refuse(NS_ERR_EXPIRED, "token_expired", "the credential has expired; authenticate again (or renew it) and resubscribe")
    }
    let name = stream.string
    let connection = LiveConnection(naming: copied)
    let transport = PluginHandle.from(host)?.name ?? ""
    // Its reads take turns with other tenants' (`TenantLines`), as a request's do.
    Task { await ReadingTenant.$named.withValue(context.tenant.description) {
        // A subscribe reads the stream's log from `after` (an SSE stream's open, a WebSocket's subscribe, a replay):
        // it takes its place in its user's and tenant's reads (`limits.reads_per_second_per_user`, ..._per_tenant),
        // and past them starts when its place comes. Not refused: the client waits, as a paced WebSocket does.
        let wait = kernel.readRates.pace(UserIdentity(context))
        if wait > 0 { try? await Task.sleep(nanoseconds: wait) }
        do {
            let source = try await streamSource(name, after: after, kernel: kernel, context: context, connection: connection)
            let hosted = HostSubscription(source, subscriber: copy.function, principal: principal,
                                          connection: connection?.sink, metrics: kernel.hub.metrics,
                                          transport: transport)
            let pointer = hosted.retainForPlugin()
            withNSStr("") { callback.function(callback.context, ns_status(NS_OK), pointer, $0) }
            hosted.start()
        } catch let error as KernelError {
            let status = switch error.kind {
            case .notFound: NS_ERR_NOT_FOUND
            case .forbidden: NS_ERR_DENIED
            case .invalid: NS_ERR_INVALID_ARGUMENT
            default: NS_ERR_UNAVAILABLE
            }
            refuse(status, error.code, error.message)
        } catch {
            refuse(NS_ERR_UNAVAILABLE, "store_unavailable", "the event log could not be read")
        }
    } }
}

/// The source of a stream name, resolved by the kernel's isolation service.
private func streamSource(_ name: String, after: UInt64, kernel: Kernel, context: RequestContext,
                          connection: LiveConnection?) async throws -> any StreamSource {
    switch try await kernel.resolver.resolveStream(name, for: context) {
    case .live(let stream):
        return try await liveSource(stream, after: after, kernel: kernel, connection: connection)
    case .replay(let gesture, let options):
        if let from = options.fromMs, from > gesture.durationMs {
            throw KernelError.invalid("invalid_from_ms", "from_ms \(from) is past the gesture's end (\(gesture.durationMs) ms)")
        }
        guard after <= UInt64(gesture.sampleCount) else {
            throw KernelError.invalid("invalid_after", "after=\(after) is past the gesture's last sample (\(gesture.sampleCount))")
        }
        return GestureReplay(gesture: gesture, store: kernel.store, options: options, after: after, clock: ContinuousClock())
    }
}

private func liveSource(_ stream: StreamName, after: UInt64, kernel: Kernel, connection: LiveConnection?) async throws -> any StreamSource {
    let page = try await kernel.store.events(stream: stream, after: 0, limit: 0)
    guard after <= page.headSeq else {
        throw KernelError.invalid("invalid_after", "after=\(after) is past the stream's head (\(page.headSeq))")
    }
    if let connection {
        return kernel.hub.subscribe(stream, after: after, store: kernel.store, connection: connection.sink,
                                    transport: connection.transport)
    }
    return kernel.hub.subscribe(stream, after: after, store: kernel.store)
}

/// The connection a 1.3 subscriber named, when its transport frames events
/// itself: then the host writes live events to it directly.
private struct LiveConnection {
    let sink: ConnectionSink
    let transport: PluginInstance

    init?(naming subscriber: ns_subscriber) {
        guard PluginStruct.covers(subscriber, through: \.websocket) else { return nil }
        if let socket = HostWebSocket.from(subscriber.websocket) {
            (sink, transport) = (socket.sink, socket.plugin)
        } else if let exchange = Exchange.from(subscriber.exchange) {
            (sink, transport) = (exchange.sink, exchange.plugin)
        } else {
            return nil
        }
        guard transport.framesEvents else { return nil }
    }
}

private func kernelCall(_ host: OpaquePointer?, _ principal: OpaquePointer?, _ operation: ns_str, _ target: ns_str,
                        _ body: ns_bytes, _ done: ns_kernel_done?, _ context: UnsafeMutableRawPointer?) {
    guard let done else { return }
    let callback = Callback(function: done, context: context)
    let kernel = PluginHandle.from(host)?.kernel
    let requester = PrincipalHandles.find(principal)?.context
    let (operation, target, bytes) = (operation.string, target.string, body.array)
    // Its reads take turns with other tenants' (`TenantLines`), as a request's do.
    Task { await ReadingTenant.$named.withValue(requester?.tenant.description) {
        let (status, answer) = await KernelOperations.perform(operation, target: target, body: bytes, kernel: kernel, context: requester)
        withNSBytes(Array(answer)) { callback.function(callback.context, Int32(status), $0) }
    } }
}
