import NIOConcurrencyHelpers

/// A monotonic clock in nanoseconds that moves only when told: for the
/// rate limits' `now`.
final class Ticks: Sendable {
    private let value = NIOLockedValueBox<UInt64>(1_000_000_000)

    func read() -> UInt64 { value.withLockedValue { $0 } }

    func advance(milliseconds: UInt64) { value.withLockedValue { $0 += milliseconds * 1_000_000 } }
}
