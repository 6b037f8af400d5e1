import PluginAPI

/// A credential as a client presented it. `value` is a secret: it is never
/// logged, and `description` hides it.
public struct Credential: Sendable, CustomStringConvertible {
    public enum Source: Int32, Sendable {
        case header = 1, query = 2, webSocketProtocol = 3
    }

    public let source: Source
    public let scheme: String
    public let value: String

    public init(source: Source, scheme: String, value: String) {
        self.source = source
        self.scheme = scheme
        self.value = value
    }

    /// Parses `Authorization: <scheme> <value>`; nil when the header is malformed.
    public init?(authorization header: String) {
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2 else { return nil }
        let value = parts[1].trimmingHeaderWhitespace
        guard !value.isEmpty else { return nil }
        self.init(source: .header, scheme: String(parts[0]), value: String(value))
    }

    public var description: String { "\(scheme) <redacted>" }
}
