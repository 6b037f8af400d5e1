/// A tenant id that matched `^t_[a-z0-9][a-z0-9_-]{0,62}$`.
///
/// The only way to get one is through this check, so a value of this type
/// is safe to put in a storage key or a log line.
public struct TenantID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    nonisolated(unsafe) static let pattern = /^t_[a-z0-9][a-z0-9_-]{0,62}$/

    /// Checks `text` against the tenant pattern; nil when it does not match.
    public init?(_ text: String) {
        guard text.wholeMatch(of: Self.pattern) != nil else { return nil }
        rawValue = text
    }

    public var description: String { rawValue }
}
