/// A configuration that cannot be used, with where and why.
///
/// `path` is the key path inside the file (`plugins[1].path`), so an operator
/// can find the line; `file` is the file it came from.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let path: String
    public let message: String

    public init(file: String, path: String, message: String) {
        self.file = file
        self.path = path
        self.message = message
    }

    public var description: String {
        path.isEmpty ? "\(file): \(message)" : "\(file): \(path): \(message)"
    }
}
