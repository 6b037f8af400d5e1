/// Why the host refuses a plugin: the file, the rule it broke, and what to do.
///
/// `rule` is a stable identifier (tests and scripts match on it); the message
/// and remedy are for people.
public struct PluginLoadError: Error, CustomStringConvertible, Sendable {
    /// Stable names of the load rules, as `docs/plugins.md` lists them.
    public enum Rule: String, Sendable {
        case fileMissing = "file-missing"
        case notSharedObject = "not-a-shared-object"
        case dlopenFailed = "dlopen-failed"
        case sanitizerRuntime = "sanitizer-runtime"
        case noEntrySymbol = "no-entry-symbol"
        case abiMajor = "abi-major-mismatch"
        case abiMinor = "abi-minor-unsupported"
        case entryRefused = "entry-refused"
        case structTooSmall = "struct-too-small"
        case vtableMismatch = "vtable-mismatch"
        case mandatoryEntryMissing = "mandatory-entry-null"
        case unknownKind = "unknown-kind"
        case badName = "bad-name"
        case nameMismatch = "name-mismatch"
        case duplicateFile = "duplicate-file"
        case duplicateName = "duplicate-name"
        case initFailed = "init-failed"
        case configRejected = "config-rejected"
        case startFailed = "start-failed"
        case authChain = "auth-chain"
        case storageBackend = "storage-backend"
    }

    public let file: String
    public let rule: Rule
    public let message: String
    public let remedy: String

    public init(file: String, rule: Rule, message: String, remedy: String) {
        self.file = file
        self.rule = rule
        self.message = message
        self.remedy = remedy
    }

    public var description: String {
        "plugin \(file): refused [\(rule.rawValue)]: \(message). To fix: \(remedy)"
    }
}
