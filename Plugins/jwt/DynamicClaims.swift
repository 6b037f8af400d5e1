import JWTKit

/// A claim value we understand: a string, a number, or an array of strings.
enum JSONScalar: Codable, Sendable {
    case string(String)
    case number(Double)
    case strings([String])
    case other

    var string: String? { if case .string(let s) = self { s } else { nil } }
    var number: Double? { if case .number(let n) = self { n } else { nil } }
    /// A string as a one-element list, or a list; space-separated strings split.
    var strings: [String] {
        switch self {
        case .string(let s): s.split(separator: " ").map(String.init)
        case .strings(let list): list
        default: []
        }
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode([String].self) { self = .strings(value) }
        else { self = .other }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let s): try container.encode(s)
        case .number(let n):
            // Whole seconds as an integer; anything else (never minted here) as it is.
            if n.rounded() == n, abs(n) < 9e15 { try container.encode(Int64(n)) } else { try container.encode(n) }
        case .strings(let list): try container.encode(list)
        case .other: try container.encodeNil()
        }
    }
}

/// A payload whose claim names come from config. Time and issuer checks are
/// done by `JWTProvider.check`, with the configured leeway.
struct DynamicClaims: JWTPayload {
    var values: [String: JSONScalar]

    init(values: [String: JSONScalar]) { self.values = values }

    init(from decoder: any Decoder) throws {
        values = try decoder.singleValueContainer().decode([String: JSONScalar].self)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(values)
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
