import Foundation
import NorthstarPluginKit
import PluginAPI

/// A plugin whose `init` succeeded: the library and the instance it made.
///
/// OWNERSHIP: `instance` belongs to the plugin; the host hands it back on
/// every call and to `destroy` after `stop`.
public final class PluginInstance: @unchecked Sendable {
    public let library: PluginLibrary
    let instance: UnsafeMutableRawPointer?

    init(library: PluginLibrary, instance: UnsafeMutableRawPointer?) {
        self.library = library
        self.instance = instance
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
    private var transportVTable: ns_transport_vtable? {
        guard kind == .transport, let vtable = library.info.pointee.vtable else { return nil }
        return vtable.assumingMemoryBound(to: ns_transport_vtable.self).pointee
    }

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
