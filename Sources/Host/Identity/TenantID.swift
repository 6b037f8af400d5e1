/// A tenant id that matched `^t_[a-z0-9][a-z0-9_-]{0,62}$`.
///
/// The only way to get one is through this check, so a value of this type
/// is safe to put in a storage key or a log line.
public struct TenantID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    /// Checks `text` against the tenant pattern; nil when it does not match.
    /// (Checked byte by byte: every request's credential names a tenant, and
    /// a regular expression here showed in profiles of the publish path.)
    public init?(_ text: String) {
        guard Self.isWellFormed(text.utf8) else { return nil }
        rawValue = text
    }

    private static func isWellFormed(_ bytes: String.UTF8View) -> Bool {
        guard (3...65).contains(bytes.count) else { return false }
        func isLowerAlphanumeric(_ byte: UInt8) -> Bool { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
        for (offset, byte) in bytes.enumerated() {
            switch offset {
            case 0: guard byte == UInt8(ascii: "t") else { return false }
            case 1: guard byte == UInt8(ascii: "_") else { return false }
            case 2: guard isLowerAlphanumeric(byte) else { return false }
            default: guard isLowerAlphanumeric(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") else { return false }
            }
        }
        return true
    }

    public var description: String { rawValue }
}
