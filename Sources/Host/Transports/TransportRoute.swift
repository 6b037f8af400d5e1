import HTTPTypes

/// A route a transport plugin mounted with `route_add`.
struct TransportRoute: Sendable {
    let method: HTTPRequest.Method
    /// As the plugin gave it: `/sse/chat/{thread_id}`.
    let pattern: String
    let routeID: UInt32

    /// The placeholders' names, in order.
    var parameterNames: [String] {
        pattern.split(separator: "/").compactMap { segment in
            segment.hasPrefix("{") && segment.hasSuffix("}") ? String(segment.dropFirst().dropLast()) : nil
        }
    }

    /// The pattern in the router's syntax (`:thread_id`).
    var routerPath: String {
        "/" + pattern.split(separator: "/").map { segment in
            segment.hasPrefix("{") && segment.hasSuffix("}") ? ":" + segment.dropFirst().dropLast() : String(segment)
        }.joined(separator: "/")
    }

    /// The placeholders' values when `path` (no query) matches the pattern.
    func match(_ path: String) -> [String]? {
        let want = pattern.split(separator: "/", omittingEmptySubsequences: false)
        let have = path.split(separator: "/", omittingEmptySubsequences: false)
        guard want.count == have.count else { return nil }
        var values: [String] = []
        for (segment, value) in zip(want, have) {
            if segment.hasPrefix("{") && segment.hasSuffix("}") {
                guard !value.isEmpty else { return nil }
                values.append(String(value))
            } else if segment != value {
                return nil
            }
        }
        return values
    }

    /// Checks a pattern: absolute, plain segments or `{name}` placeholders.
    static func isValid(_ pattern: String) -> Bool {
        guard pattern.hasPrefix("/"), pattern.count <= 256 else { return false }
        return pattern.split(separator: "/").allSatisfy { segment in
            let name = segment.hasPrefix("{") && segment.hasSuffix("}") ? segment.dropFirst().dropLast() : segment
            return !name.isEmpty && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) }
        }
    }
}
