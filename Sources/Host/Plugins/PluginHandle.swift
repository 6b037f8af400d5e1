import Foundation
import Logging
import NIOConcurrencyHelpers
import PluginAPI

/// The host's side of one `ns_host *`: who the plugin is, for logs and for
/// the config it may read while it initialises.
///
/// OWNERSHIP: retained by the host for the life of the process; plugins hold
/// the unretained pointer.
final class PluginHandle: @unchecked Sendable {
    let file: String
    private let state = NIOLockedValueBox(State())

    private struct State {
        var name = ""
        /// The ABI minor the plugin declares: what it may be answered with.
        var abiMinor: UInt32 = 0
        /// Routes a transport mounted during `start`.
        var routes: [TransportRoute] = []
        /// The kernel, once the node has one: what host services act on.
        var kernel: Kernel?
        var config: JSONValue = .object([:])
        /// Strings handed out by `config_get`; freed when `init` returns.
        var arena: [UnsafeMutablePointer<CChar>] = []
    }

    init(file: String) {
        self.file = file
        state.withLockedValue { $0.name = URL(fileURLWithPath: file).lastPathComponent }
    }

    var name: String {
        get { state.withLockedValue { $0.name } }
        set { state.withLockedValue { $0.name = newValue } }
    }

    var abiMinor: UInt32 {
        get { state.withLockedValue { $0.abiMinor } }
        set { state.withLockedValue { $0.abiMinor = newValue } }
    }

    var logger: Logger { Logger(label: "northstar.plugin.\(name)") }

    var routes: [TransportRoute] { state.withLockedValue { $0.routes } }

    func addRoute(_ route: TransportRoute) { state.withLockedValue { $0.routes.append(route) } }

    var kernel: Kernel? {
        get { state.withLockedValue { $0.kernel } }
        set { state.withLockedValue { $0.kernel = newValue } }
    }

    /// The opaque pointer plugins see.
    var pointer: OpaquePointer { OpaquePointer(Unmanaged.passUnretained(self).toOpaque()) }

    static func from(_ pointer: OpaquePointer?) -> PluginHandle? {
        guard let pointer else { return nil }
        return Unmanaged<PluginHandle>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }

    /// Runs `body` with the config readable through `config_get`, then frees
    /// every string handed out meanwhile.
    func withConfig<Result>(_ config: JSONValue, _ body: () throws -> Result) rethrows -> Result {
        state.withLockedValue { $0.config = config }
        defer {
            let arena = state.withLockedValue { state in
                defer { state.arena = []; state.config = .object([:]) }
                return state.arena
            }
            arena.forEach { $0.deallocate() }
        }
        return try body()
    }

    var config: JSONValue { state.withLockedValue { $0.config } }

    /// Copies `text` into memory that lives until `init` returns.
    func keep(_ text: String) -> ns_str {
        let utf8 = Array(text.utf8)
        let memory = UnsafeMutablePointer<CChar>.allocate(capacity: max(utf8.count, 1))
        utf8.withUnsafeBufferPointer { source in
            source.withMemoryRebound(to: CChar.self) { memory.update(from: $0.baseAddress!, count: utf8.count) }
        }
        state.withLockedValue { $0.arena.append(memory) }
        return ns_str(ptr: UnsafePointer(memory), len: UInt64(utf8.count))
    }
}

/// The host's side of one `ns_error *`: the message of one failing call.
final class ErrorSlot {
    var message: String?
    var pointer: OpaquePointer { OpaquePointer(Unmanaged.passUnretained(self).toOpaque()) }
    static func from(_ pointer: OpaquePointer?) -> ErrorSlot? {
        guard let pointer else { return nil }
        return Unmanaged<ErrorSlot>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }
}

/// The host's side of one `ns_claims *`: what an auth provider verified.
final class ClaimsSink {
    var claims: [String: String] = [:]
    var pointer: OpaquePointer { OpaquePointer(Unmanaged.passUnretained(self).toOpaque()) }
    static func from(_ pointer: OpaquePointer?) -> ClaimsSink? {
        guard let pointer else { return nil }
        return Unmanaged<ClaimsSink>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }
}

/// The host's side of one `ns_buffer *`: bytes a plugin hands back.
final class HostBuffer {
    var bytes: [UInt8] = []
    /// A bound on what one plugin call may hand back, so a bug cannot eat memory.
    static let limit = 1 << 20
    var pointer: OpaquePointer { OpaquePointer(Unmanaged.passUnretained(self).toOpaque()) }
    static func from(_ pointer: OpaquePointer?) -> HostBuffer? {
        guard let pointer else { return nil }
        return Unmanaged<HostBuffer>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }
}
