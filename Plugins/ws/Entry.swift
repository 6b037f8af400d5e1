import Foundation
import NorthstarPluginKit
import PluginAPI

// The C side of the ws transport: the exported entry, the vtable, and the
// completions the host calls. A C function pointer cannot capture context,
// so each is a file-level function that finds its object in `context`.

/// The host's services, set once by the entry point.
nonisolated(unsafe) var api: ns_host_api = ns_host_api()

@_cdecl("northstar_plugin_v1")
public func northstarPluginV1(_ offer: UnsafePointer<ns_host_offer>?,
                              _ info: UnsafeMutablePointer<UnsafePointer<ns_plugin_info>?>?,
                              _ error: OpaquePointer?) -> ns_status {
    guard let offer, let info, PluginOffer.accepts(offer), let table = offer.pointee.api,
          table.pointee.struct_size >= UInt32(NS_HOST_API_SIZE_1_1) else { return ns_status(NS_ERR_UNSUPPORTED) }
    api = table.pointee
    info.pointee = pluginInfo
    return ns_status(NS_OK)
}

/// Built once; the host keeps the pointer for the life of the process.
nonisolated(unsafe) private let pluginInfo: UnsafePointer<ns_plugin_info> = {
    var vtable = ns_transport_vtable()
    vtable.struct_size = UInt32(MemoryLayout<ns_transport_vtable>.size)
    vtable.minor = UInt32(NS_TRANSPORT_VTABLE_MINOR)
    vtable.on_request = { instance, request, exchange in
        guard let request else { return }
        plugin(instance).handle(request, exchange: exchange)
    }
    vtable.on_exchange_closed = { instance, exchange in plugin(instance).exchangeClosed(exchange) }
    vtable.on_ws_message = { _, conn, _, opcode, payload in
        let bytes = payload.ptr.map { Data(bytes: $0, count: Int(payload.len)) } ?? Data()
        WSConnection.from(conn).received(opcode, bytes)
    }
    vtable.on_ws_closed = { _, conn, _, _, _ in WSConnection.from(conn).socketClosed() }
    // Live events: framed once here, and the host sends the same bytes to every socket.
    vtable.frame_event = { _, stream, _, _, json, out, capacity, length in
        let frame = EventFrame.bytes(stream: stream.string, event: UnsafeRawBufferPointer(start: json.ptr, count: Int(json.len)))
        length?.pointee = UInt64(frame.count)
        guard let out, UInt64(frame.count) <= capacity else { return ns_status(NS_ERR_TOO_LARGE) }
        frame.withUnsafeBytes { out.initialize(from: $0.bindMemory(to: UInt8.self).baseAddress!, count: frame.count) }
        return ns_status(NS_OK)
    }
    return PluginOffer.info(kind: Int32(NS_KIND_TRANSPORT), name: "ws", version: "1.0.0",
                            summary: "WebSocket transport: one socket per stream or many streams per socket",
                            vtable: PluginOffer.permanent(vtable)) { info in
        info.`init` = { _, host, config, outInstance, slot in
            guard let outInstance else { return ns_status(NS_ERR_INVALID_ARGUMENT) }
            do {
                outInstance.pointee = Unmanaged.passRetained(try WSPlugin(host: host, config: Data(PluginOffer.bytes(config)))).toOpaque()
                return ns_status(NS_OK)
            } catch {
                return withUnsafePointer(to: api) { PluginOffer.report(error, api: $0, slot: slot, fallback: Int32(NS_ERR_CONFIG)) }
            }
        }
        info.start = { instance, error in plugin(instance).mountRoutes(error: error) }
        info.destroy = PluginOffer.releaseInstance
    }
}()

private func plugin(_ instance: UnsafeMutableRawPointer?) -> WSPlugin {
    Unmanaged<WSPlugin>.fromOpaque(instance!).takeUnretainedValue()
}

// MARK: Completions

func onAuthenticated(_ context: UnsafeMutableRawPointer?, _ status: ns_status, _ principal: OpaquePointer?, _ message: ns_str) {
    WSConnection.from(context).authenticated(status, principal, message.string)
}

func onSubscribed(_ context: UnsafeMutableRawPointer?, _ status: ns_status, _ subscription: OpaquePointer?, _ message: ns_str) {
    let subscriber = Unmanaged<StreamSubscriber>.fromOpaque(context!).takeUnretainedValue()
    subscriber.connection.subscribed(subscriber, status, subscription, message.string)
}

/// A refused subscribe's stable code (ABI 1.2), kept for the answer `onSubscribed` gives.
func onRefused(_ context: UnsafeMutableRawPointer?, _ code: ns_str) {
    let subscriber = Unmanaged<StreamSubscriber>.fromOpaque(context!).takeUnretainedValue()
    subscriber.refusalCode = code.string
}

func onEvent(_ context: UnsafeMutableRawPointer?, _ seq: UInt64, _ type: ns_str, _ json: ns_bytes) {
    let subscriber = Unmanaged<StreamSubscriber>.fromOpaque(context!).takeUnretainedValue()
    let frame = EventFrame.bytes(stream: subscriber.stream, event: UnsafeRawBufferPointer(start: json.ptr, count: Int(json.len)))
    subscriber.connection.deliver(frame, seq: seq, from: subscriber)
}

func onGap(_ context: UnsafeMutableRawPointer?, _ requestedAfter: UInt64, _ firstSeq: UInt64) {
    let subscriber = Unmanaged<StreamSubscriber>.fromOpaque(context!).takeUnretainedValue()
    subscriber.connection.gap(subscriber, requestedAfter: requestedAfter, firstSeq: firstSeq)
}

func onEnd(_ context: UnsafeMutableRawPointer?, _ status: ns_status, _ message: ns_str) {
    let subscriber = Unmanaged<StreamSubscriber>.fromOpaque(context!).takeUnretainedValue()
    subscriber.connection.ended(subscriber, status, message.string)
}

func onKernelDone(_ context: UnsafeMutableRawPointer?, _ status: Int32, _ json: ns_bytes) {
    let call = Unmanaged<KernelCall>.fromOpaque(context!).takeRetainedValue()
    let text = json.ptr.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: Int(json.len)), as: UTF8.self) } ?? "{}"
    call.connection.kernelAnswered(call, status: status, json: text)
}
