/// An RFC 6901 JSON Pointer, parsed into its reference tokens.
///
/// Parsing is strict: a pointer is empty or starts with "/", and "~" is
/// only ever followed by "0" or "1". Nothing is normalised.
public struct JSONPointer: Sendable, Equatable, CustomStringConvertible {
    public let tokens: [String]

    /// Parses `text`; nil when it is not a valid pointer.
    public init?(_ text: String) {
        guard !text.isEmpty else { tokens = []; return }
        guard text.hasPrefix("/") else { return nil }
        var tokens: [String] = []
        for raw in text.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            var token = ""
            var escaping = false
            for character in raw {
                if escaping {
                    switch character {
                    case "0": token.append("~")
                    case "1": token.append("/")
                    default: return nil
                    }
                    escaping = false
                } else if character == "~" {
                    escaping = true
                } else {
                    token.append(character)
                }
            }
            if escaping { return nil }
            tokens.append(token)
        }
        self.tokens = tokens
    }

    init(tokens: [String]) { self.tokens = tokens }

    public var description: String {
        tokens.map { "/" + $0.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1") }.joined()
    }

    /// Whether this pointer is `other` or lies inside it.
    func isWithin(_ other: JSONPointer) -> Bool {
        tokens.count >= other.tokens.count && Array(tokens.prefix(other.tokens.count)) == other.tokens
    }

    /// An array index token: "0", or digits without a leading zero.
    static func arrayIndex(_ token: String) -> Int? {
        guard !token.isEmpty, token.allSatisfy({ $0.isASCII && $0.isNumber }),
              token == "0" || !token.hasPrefix("0") else { return nil }
        return Int(token)
    }
}
