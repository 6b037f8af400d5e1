import NIOConcurrencyHelpers
import NIOCore
import PluginAPI

/// One call to a storage plugin: the host's side of an `ns_storage_call *`.
///
/// The plugin may answer from any thread, before or after the entry returns;
/// what it reports (handle, bytes, list entries) gathers here until it
/// completes, exactly once. The host stops waiting after its timeout, but
/// the call stays alive (and any chunk it lent stays valid) until the plugin
/// completes it; a handle that arrives after the host gave up is released.
///
/// OWNERSHIP: retained for the plugin from the entry call until `storage_complete`.
final class StorageCall: @unchecked Sendable {
    struct Result: @unchecked Sendable {
        var status: ns_status = ns_status(NS_OK)
        var message = ""
        var info: ObjectInfo?
        var handle: UnsafeMutableRawPointer?
        var bytes = ByteBuffer()
        var entries: [(key: String, info: ObjectInfo)] = []
        var nextPageToken: String?
    }

    private struct State {
        var result = Result()
        var completed = false
        var abandoned = false
        var waiter: CheckedContinuation<Result?, Never>?
    }

    private let state = NIOLockedValueBox(State())
    /// Bytes lent to the plugin (a `put_write` chunk): kept until completion.
    let lent: [UInt8]
    /// Releases a handle that arrives after the host stopped waiting.
    let releaseLateHandle: @Sendable (UnsafeMutableRawPointer) -> Void
    /// Undoes a call that succeeded after the host stopped waiting and told
    /// its client it failed (an upload that finished after its 504).
    let undoLateSuccess: @Sendable (ObjectInfo?) -> Void

    init(lent: [UInt8] = [], releaseLateHandle: @escaping @Sendable (UnsafeMutableRawPointer) -> Void = { _ in },
         undoLateSuccess: @escaping @Sendable (ObjectInfo?) -> Void = { _ in }) {
        self.lent = lent
        self.releaseLateHandle = releaseLateHandle
        self.undoLateSuccess = undoLateSuccess
    }

    func retainForPlugin() -> OpaquePointer { OpaquePointer(Unmanaged.passRetained(self).toOpaque()) }

    static func from(_ pointer: OpaquePointer?) -> StorageCall? {
        guard let pointer else { return nil }
        return Unmanaged<StorageCall>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }

    // MARK: The plugin's side

    func setHandle(_ handle: UnsafeMutableRawPointer?) { state.withLockedValue { if !$0.completed { $0.result.handle = handle } } }

    func deliver(_ bytes: UnsafeRawBufferPointer) {
        state.withLockedValue { if !$0.completed { $0.result.bytes.writeBytes(bytes) } }
    }

    func listEntry(_ key: String, _ info: ObjectInfo) { state.withLockedValue { if !$0.completed { $0.result.entries.append((key, info)) } } }

    func listNext(_ token: String) { state.withLockedValue { if !$0.completed { $0.result.nextPageToken = token } } }

    /// `storage_complete`: hands the result to the waiting host, once, and
    /// returns the plugin's reference.
    func complete(_ status: ns_status, _ message: String, _ info: ObjectInfo?) {
        let (first, waiter, lateHandle, late) = state.withLockedValue {
            state -> (Bool, CheckedContinuation<Result?, Never>?, UnsafeMutableRawPointer?, Bool) in
            guard !state.completed else { return (false, nil, nil, false) }
            state.completed = true
            state.result.status = status
            state.result.message = message
            state.result.info = info
            defer { state.waiter = nil }
            return (true, state.waiter, state.abandoned ? state.result.handle : nil, state.abandoned)
        }
        guard first else { return }
        if let lateHandle { releaseLateHandle(lateHandle) }
        if late, status == ns_status(NS_OK) { undoLateSuccess(info) }
        waiter?.resume(returning: state.withLockedValue { $0.result })
        Unmanaged.passUnretained(self).release()
    }

    // MARK: The host's side

    /// The result, or nil when `timeout` passed first (the call is then
    /// abandoned: its late result is dropped).
    func result(timeout: Duration) async -> Result? {
        await withTaskGroup(of: Result?.self) { group in
            group.addTask { [self] in
                await withCheckedContinuation { continuation in
                    let ready: Result?? = state.withLockedValue { state in
                        if state.completed { return .some(state.result) }
                        if state.abandoned { return .some(nil) }
                        state.waiter = continuation
                        return .none
                    }
                    if let ready { continuation.resume(returning: ready) }
                }
            }
            group.addTask { [self] in
                try? await Task.sleep(for: timeout)
                let waiter = state.withLockedValue { state -> CheckedContinuation<Result?, Never>? in
                    guard !state.completed else { return nil }
                    state.abandoned = true
                    defer { state.waiter = nil }
                    return state.waiter
                }
                waiter?.resume(returning: nil)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }
}
