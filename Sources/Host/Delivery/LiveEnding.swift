import NIOConcurrencyHelpers

/// How a sink's live delivery ended, handed from the loop that saw it to
/// the subscription's reader, which waits for it while the host writes.
final class LiveEnding: Sendable {
    private struct State {
        var reason: LiveSink.End?
        var waiter: CheckedContinuation<LiveSink.End, Never>?
    }

    private let state = NIOLockedValueBox(State())

    /// Records the end (the first one counts) and wakes the reader.
    func signal(_ reason: LiveSink.End) {
        let waiter = state.withLockedValue { state -> CheckedContinuation<LiveSink.End, Never>? in
            guard state.reason == nil else { return nil }
            state.reason = reason
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: reason)
    }

    /// Waits until delivery ends.
    func wait() async -> LiveSink.End {
        await withCheckedContinuation { continuation in
            let ready = state.withLockedValue { state -> LiveSink.End? in
                if let reason = state.reason { return reason }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}
