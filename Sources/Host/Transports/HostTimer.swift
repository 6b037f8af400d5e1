import Foundation
import NIOCore
import NIOPosix
import PluginAPI

/// The host's side of an `ns_timer *`: a repeating or one-shot task on an event loop.
/// OWNERSHIP: retained for the plugin until `timer_cancel`.
final class HostTimer: @unchecked Sendable {
    private let gate = PluginCallbackGate()
    private var scheduled: RepeatedTask?

    private var once: Scheduled<Void>?

    /// Fires every `interval` until cancelled.
    init(interval: TimeAmount, fire: @escaping ns_timer_fn, context: UnsafeMutableRawPointer?) {
        let gate = self.gate
        let contextBits = UInt(bitPattern: context)
        scheduled = MultiThreadedEventLoopGroup.singleton.any().scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            gate.run { fire(UnsafeMutableRawPointer(bitPattern: contextBits)) }
        }
    }

    /// Fires once, after `delay`, unless cancelled first (`timer_once`, ABI 1.4).
    init(once delay: TimeAmount, fire: @escaping ns_timer_fn, context: UnsafeMutableRawPointer?) {
        let gate = self.gate
        let contextBits = UInt(bitPattern: context)
        once = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: delay) {
            gate.run { fire(UnsafeMutableRawPointer(bitPattern: contextBits)) }
        }
    }

    func retainForPlugin() -> OpaquePointer { OpaquePointer(Unmanaged.passRetained(self).toOpaque()) }

    /// Stops the timer; `fire` does not run after this returns. Releases the plugin's reference.
    static func cancel(_ pointer: OpaquePointer?) {
        guard let pointer else { return }
        let timer = Unmanaged<HostTimer>.fromOpaque(UnsafeRawPointer(pointer)).takeRetainedValue()
        timer.gate.close()
        timer.scheduled?.cancel()
        timer.once?.cancel()
    }
}
