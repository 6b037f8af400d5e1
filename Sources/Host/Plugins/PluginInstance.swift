import Foundation
import NIOCore
import NorthstarPluginKit
import PluginAPI

/// A plugin whose `init` succeeded: the library and the instance it made.
///
/// OWNERSHIP: `instance` belongs to the plugin; the host hands it back on
/// every call and to `destroy` after `stop`.
public final class PluginInstance: @unchecked Sendable {
    public let library: PluginLibrary
    let instance: UnsafeMutableRawPointer?
    /// A transport's vtable, read once at the plugin's own size: entries an
    /// older plugin's header did not have are NULL here.
    private let transportVTable: ns_transport_vtable?

    init(library: PluginLibrary, instance: UnsafeMutableRawPointer?) {
        self.library = library
        self.instance = instance
        if library.kind == .transport, let vtable = library.info.pointee.vtable {
            transportVTable = PluginStruct.copy(vtable.assumingMemoryBound(to: ns_transport_vtable.self),
                                                minimumSize: Int(NS_TRANSPORT_VTABLE_MIN_SIZE))
        } else {
            transportVTable = nil
        }
    }

    public var name: String { library.name }
    public var kind: PluginKind { library.kind }

    /// Initialises `library` with its config section.
    /// - Throws: `PluginLoadError` with the plugin's own message.
    static func initialise(_ library: PluginLibrary, config: JSONValue) throws -> PluginInstance {
        let slot = ErrorSlot()
        var instance: UnsafeMutableRawPointer?
        let json = config.jsonText
        let status = library.handle.withConfig(config) {
            withNSStr(json) { text in
                library.info.pointee.`init`!(HostServices.api, library.handle.pointer, text, &instance, slot.pointer)
            }
        }
        guard status == NS_OK else {
            let message = slot.message ?? "no message"
            if status == NS_ERR_CONFIG {
                throw PluginLoadError(file: library.file, rule: .configRejected,
                                      message: "plugin \"\(library.name)\" rejected its config: \(message)",
                                      remedy: "correct the plugin's \"config\" section (see its documentation)")
            }
            throw PluginLoadError(file: library.file, rule: .initFailed,
                                  message: "plugin \"\(library.name)\" failed to initialise (status \(status)): \(message)",
                                  remedy: "read the plugin's message above; the host does not start on a half-valid plugin set")
        }
        return PluginInstance(library: library, instance: instance)
    }

    /// Calls the plugin's `start`, if it has one.
    func start() throws {
        guard let start = library.info.pointee.start else { return }
        let slot = ErrorSlot()
        let status = start(instance, slot.pointer)
        guard status == NS_OK else {
            throw PluginLoadError(file: library.file, rule: .startFailed,
                                  message: "plugin \"\(name)\" failed to start (status \(status)): \(slot.message ?? "no message")",
                                  remedy: "read the plugin's message; plugins started before it are stopped again")
        }
    }

    /// Calls `stop`, then `destroy`. The library stays loaded.
    func stop() {
        library.info.pointee.stop?(instance)
        discard()
    }

    /// Calls `destroy` only: for an instance that never started.
    func discard() {
        library.info.pointee.destroy?(instance)
    }
}

extension PluginInstance {

    /// Hands a request on one of the plugin's routes to it.
    func onRequest(_ request: UnsafePointer<ns_http_request>, exchange: OpaquePointer) {
        transportVTable?.on_request?(instance, request, exchange)
    }

    /// Tells the plugin the client of an unfinished exchange went away.
    func exchangeClosed(_ exchange: OpaquePointer) {
        transportVTable?.on_exchange_closed?(instance, exchange)
    }
}

extension PluginInstance {
    /// Hands one WebSocket message to the plugin.
    func webSocketMessage(conn: UnsafeMutableRawPointer?, socket: OpaquePointer, opcode: ns_ws_opcode, payload: ns_bytes) {
        transportVTable?.on_ws_message?(instance, conn, socket, opcode, payload)
    }

    /// Tells the plugin a WebSocket closed: its last call for `socket`.
    func webSocketClosed(conn: UnsafeMutableRawPointer?, socket: OpaquePointer, code: UInt16, reason: ns_str) {
        transportVTable?.on_ws_closed?(instance, conn, socket, code, reason)
    }

    /// Whether the plugin can take WebSockets at all.
    var handlesWebSockets: Bool { transportVTable?.on_ws_message != nil && transportVTable?.on_ws_closed != nil }
}

extension PluginInstance {
    /// Whether the transport frames live events itself, once for all (ABI 1.3).
    var framesEvents: Bool { transportVTable?.frame_event != nil }

    /// One event as this transport sends it (`frame_event`); nil when the
    /// transport has no `frame_event` or refused the event.
    func frameEvent(_ event: StreamEvent) -> ByteBuffer? {
        guard let frame = transportVTable?.frame_event else { return nil }
        let stream = event.stream.description
        var capacity = event.json.count + event.type.utf8.count + stream.utf8.count + 256
        for _ in 0..<2 {
            var buffer = ByteBuffer()
            var status = ns_status(NS_OK)
            var length: UInt64 = 0
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { out in
                withNSStr(stream) { streamView in
                    withNSStr(event.type) { typeView in
                        event.json.withUnsafeBytes { json in
                            status = frame(instance, streamView, event.seq, typeView,
                                           ns_bytes(ptr: json.bindMemory(to: UInt8.self).baseAddress, len: UInt64(json.count)),
                                           out.bindMemory(to: UInt8.self).baseAddress, UInt64(capacity), &length)
                        }
                    }
                }
                return status == NS_OK && length <= UInt64(capacity) ? Int(length) : 0
            }
            if status == NS_OK, length <= UInt64(capacity) { return buffer }
            guard status == NS_ERR_TOO_LARGE, length > UInt64(capacity), length < 1 << 30 else { return nil }
            capacity = Int(length)
        }
        return nil
    }
}
