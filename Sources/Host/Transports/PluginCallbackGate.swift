import Foundation

/// Runs a plugin's callbacks one at a time, and not at all once closed.
///
/// The ABI promises that no callback runs after `subscription_cancel` or
/// `timer_cancel` returns: `close()` waits for a callback in flight and
/// stops later ones. The lock is recursive, so a plugin may cancel from
/// inside its own callback.
final class PluginCallbackGate: @unchecked Sendable {
    private let lock = NSRecursiveLock()
    private var closed = false

    /// Runs `body` unless the gate is closed. Returns false once closed.
    @discardableResult
    func run(_ body: () -> Void) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { return false }
        body()
        return true
    }

    /// Runs `body` unless the gate is closed, and closes it in the same hold
    /// of the lock: a last callback (`on_end`) runs at most once, however
    /// many threads end the subscription at the same moment.
    func runLast(_ body: () -> Void) {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { return }
        closed = true
        body()
    }

    /// Closes the gate, waiting for a callback in flight. Idempotent.
    func close() {
        lock.lock()
        closed = true
        lock.unlock()
    }
}
