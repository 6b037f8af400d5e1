import NIOConcurrencyHelpers

/// How a sink's live delivery ended, handed from the loop that saw it to
/// whoever follows the subscription: a callback (no task waits while the
/// host writes), or a reader that waits.
final class LiveEnding: Sendable {
    private struct State {
        var reason: LiveSink.End?
        var waiter: CheckedContinuation<LiveSink.End, Never>?
        var action: (@Sendable (LiveSink.End) -> Void)?
    }

    private let state = NIOLockedValueBox(State())

    /// Records the end (the first one counts) and wakes the reader.
    func signal(_ reason: LiveSink.End) {
        let (waiter, action) = state.withLockedValue { state -> (CheckedContinuation<LiveSink.End, Never>?, (@Sendable (LiveSink.End) -> Void)?) in
            guard state.reason == nil else { return (nil, nil) }
            state.reason = reason
            defer { state.waiter = nil; state.action = nil }
            return (state.waiter, state.action)
        }
        waiter?.resume(returning: reason)
        action?(reason)
    }

    /// Runs `action` once delivery ends; at once if it has.
    func whenEnded(_ action: @escaping @Sendable (LiveSink.End) -> Void) {
        let ended = state.withLockedValue { state -> LiveSink.End? in
            if state.reason == nil { state.action = action }
            return state.reason
        }
        if let ended { action(ended) }
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
