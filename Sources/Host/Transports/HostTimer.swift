import Foundation
import NIOCore
import NIOPosix
import PluginAPI

/// The host's side of an `ns_timer *`: a repeating timer on the `TimerWheel`,
/// or a one-shot task on an event loop.
/// OWNERSHIP: retained for the plugin until `timer_cancel`.
final class HostTimer: WheelTimer, @unchecked Sendable {
    private let gate = PluginCallbackGate()
    private let callback: ns_timer_fn
    private let contextBits: UInt
    let interval: TimeAmount
    private let wheel: TimerWheel?
    private var once: Scheduled<Void>?

    // The wheel's, under its lock (`WheelTimer`).
    var place: (slot: Int, index: Int)?
    var onWheel = false

    /// Fires every `interval` until cancelled.
    init(interval: TimeAmount, fire: @escaping ns_timer_fn, context: UnsafeMutableRawPointer?, wheel: TimerWheel = .shared) {
        callback = fire
        contextBits = UInt(bitPattern: context)
        self.interval = interval
        self.wheel = wheel
        wheel.add(self)
    }

    /// Fires once, after `delay`, unless cancelled first (`timer_once`, ABI 1.4).
    init(once delay: TimeAmount, fire: @escaping ns_timer_fn, context: UnsafeMutableRawPointer?) {
        callback = fire
        contextBits = UInt(bitPattern: context)
        interval = delay
        wheel = nil
        let gate = self.gate
        let contextBits = self.contextBits
        once = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: delay) {
            gate.run { fire(UnsafeMutableRawPointer(bitPattern: contextBits)) }
        }
    }

    /// Calls the plugin's `fire`, unless the timer was cancelled.
    func fire() {
        let (callback, contextBits) = (self.callback, self.contextBits)
        gate.run { callback(UnsafeMutableRawPointer(bitPattern: contextBits)) }
    }

    /// On the wheel it fires every interval (`timer_once` is not on the wheel).
    var repeats: Bool { true }

    func retainForPlugin() -> OpaquePointer { OpaquePointer(Unmanaged.passRetained(self).toOpaque()) }

    /// Stops the timer; `fire` does not run after this returns. Releases the plugin's reference.
    static func cancel(_ pointer: OpaquePointer?) {
        guard let pointer else { return }
        let timer = Unmanaged<HostTimer>.fromOpaque(UnsafeRawPointer(pointer)).takeRetainedValue()
        timer.gate.close()
        timer.wheel?.remove(timer)
        timer.once?.cancel()
    }
}
