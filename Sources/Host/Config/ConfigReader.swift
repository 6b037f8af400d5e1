import Foundation

/// Reads one JSON object of the configuration, tracking the key path for
/// errors and refusing keys it was never asked about.
///
/// Call the typed accessors for every known key, then `finish()`, which names
/// the first unknown key. Strings go through `${NAME}` expansion from the
/// environment (secrets stay out of files) and `${data_dir}`.
struct ConfigReader {
    let file: String
    let path: String
    private let members: [String: JSONValue]
    private let expand: @Sendable (String, String) throws -> String
    private var consumed: Set<String> = []

    init(_ value: JSONValue, file: String, path: String,
         expand: @escaping @Sendable (String, String) throws -> String) throws {
        guard case .object(let members) = value else {
            throw ConfigError(file: file, path: path, message: "expected an object, got \(value.typeName)")
        }
        self.file = file
        self.path = path
        self.members = members
        self.expand = expand
    }

    func error(_ key: String, _ message: String) -> ConfigError {
        ConfigError(file: file, path: keyPath(key), message: message)
    }

    func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    mutating func raw(_ key: String) -> JSONValue? {
        consumed.insert(key)
        guard let value = members[key], value != .null else { return nil }
        return value
    }

    mutating func string(_ key: String) throws -> String? {
        guard let value = raw(key) else { return nil }
        guard case .string(let text) = value else {
            throw error(key, "expected a string, got \(value.typeName)")
        }
        return try expand(text, keyPath(key))
    }

    mutating func requiredString(_ key: String) throws -> String {
        guard let value = try string(key) else { throw error(key, "required, a string") }
        return value
    }

    mutating func integer(_ key: String, range: ClosedRange<Int64>) throws -> Int64? {
        guard let value = raw(key) else { return nil }
        guard case .number(let number) = value, number.rounded() == number,
              let integer = Int64(exactly: number) else {
            throw error(key, "expected an integer, got \(value.typeName == "number" ? "a fraction" : value.typeName)")
        }
        guard range.contains(integer) else {
            throw error(key, "must be between \(range.lowerBound) and \(range.upperBound), got \(integer)")
        }
        return integer
    }

    /// A number from 0 to 1 (a ratio).
    mutating func fraction(_ key: String) throws -> Double? {
        guard let value = raw(key) else { return nil }
        guard case .number(let number) = value else { throw error(key, "expected a number from 0 to 1, got \(value.typeName)") }
        guard (0...1).contains(number) else { throw error(key, "must be between 0 and 1, got \(number)") }
        return number
    }

    mutating func bool(_ key: String) throws -> Bool? {
        guard let value = raw(key) else { return nil }
        guard case .bool(let flag) = value else { throw error(key, "expected true or false, got \(value.typeName)") }
        return flag
    }

    mutating func stringArray(_ key: String) throws -> [String]? {
        guard let value = raw(key) else { return nil }
        guard case .array(let elements) = value else { throw error(key, "expected an array of strings, got \(value.typeName)") }
        return try elements.enumerated().map { index, element in
            guard case .string(let text) = element else {
                throw ConfigError(file: file, path: "\(keyPath(key))[\(index)]", message: "expected a string, got \(element.typeName)")
            }
            return try expand(text, "\(keyPath(key))[\(index)]")
        }
    }

    mutating func object(_ key: String) throws -> ConfigReader? {
        guard let value = raw(key) else { return nil }
        return try ConfigReader(value, file: file, path: keyPath(key), expand: expand)
    }

    mutating func array(_ key: String) throws -> [(JSONValue, String)]? {
        guard let value = raw(key) else { return nil }
        guard case .array(let elements) = value else { throw error(key, "expected an array, got \(value.typeName)") }
        return elements.enumerated().map { ($1, "\(keyPath(key))[\($0)]") }
    }

    /// Every key of the object, sorted (for maps whose keys are names, like `log_levels`).
    var keys: [String] { members.keys.sorted() }

    /// Refuses the first key that no accessor asked for.
    func finish() throws {
        if let unknown = members.keys.sorted().first(where: { !consumed.contains($0) }) {
            let known = consumed.sorted().joined(separator: ", ")
            throw error(unknown, "unknown key (known here: \(known))")
        }
    }
}
