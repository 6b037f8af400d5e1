/// Reads a JSON request body's members, refusing unknown ones and wrong
/// types with a stable code naming the field.
struct BodyReader {
    private let members: [String: JSONValue]
    private var read: Set<String> = []

    init(_ json: JSONValue) throws {
        guard case .object(let members) = json else {
            throw KernelError.invalid("invalid_body", "the body must be a JSON object, got \(json.typeName)")
        }
        self.members = members
    }

    private mutating func value(_ key: String) -> JSONValue? {
        read.insert(key)
        guard let value = members[key], value != .null else { return nil }
        return value
    }

    mutating func string(_ key: String, maxLength: Int) throws -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let text) = value else {
            throw KernelError.invalid("invalid_field", "\(key): expected a string, got \(value.typeName)")
        }
        guard text.utf8.count <= maxLength else {
            throw KernelError.invalid("field_too_large", "\(key): at most \(maxLength) bytes")
        }
        return text
    }

    mutating func object(_ key: String) throws -> JSONValue? {
        guard let value = value(key) else { return nil }
        guard case .object = value else {
            throw KernelError.invalid("invalid_field", "\(key): expected an object, got \(value.typeName)")
        }
        return value
    }

    mutating func array(_ key: String) throws -> [JSONValue]? {
        guard let value = value(key) else { return nil }
        guard case .array(let elements) = value else {
            throw KernelError.invalid("invalid_field", "\(key): expected an array, got \(value.typeName)")
        }
        return elements
    }

    /// An integer field; fractions, strings and out-of-range values are refused.
    mutating func integer(_ key: String, range: ClosedRange<Int64>) throws -> Int64? {
        guard let value = value(key) else { return nil }
        guard case .number(let number) = value, number.rounded() == number, let integer = Int64(exactly: number) else {
            throw KernelError.invalid("invalid_field", "\(key): expected an integer, got \(value.typeName == "number" ? "a fraction" : value.typeName)")
        }
        guard range.contains(integer) else {
            throw KernelError.invalid("invalid_field", "\(key): must be between \(range.lowerBound) and \(range.upperBound)")
        }
        return integer
    }

    /// Refuses the first member no accessor asked for.
    func finish() throws {
        if let unknown = members.keys.sorted().first(where: { !read.contains($0) }) {
            throw KernelError.invalid("unknown_field", "\(unknown): unknown field (known: \(read.sorted().joined(separator: ", ")))")
        }
    }
}
