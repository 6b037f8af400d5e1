import Dispatch

/// The result of async work, handed from the task to the waiting thread.
private final class Outcome<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}

/// Runs async work to completion from a synchronous plugin entry.
///
/// `verify` is called on a host worker thread that may block (the ABI says
/// so), never on an event loop, so waiting here starves nothing.
@discardableResult
func blocking<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) throws -> T {
    let outcome = Outcome<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { outcome.result = .success(try await work()) } catch { outcome.result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try outcome.result!.get()
}
