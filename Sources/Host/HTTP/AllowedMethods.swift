import HTTPTypes
import NIOConcurrencyHelpers

/// Which methods each route path takes, read off the router once every
/// route is mounted, so a request with a method its path does not take is
/// answered 405 with `Allow`, not 404 (the path exists).
final class AllowedMethods: Sendable {
    private struct Route: Sendable {
        let segments: [Substring]
        let method: String
    }

    private let routes = NIOLockedValueBox<[Route]>([])

    /// Records the router's routes: `(path pattern, method)` pairs, patterns
    /// with `:name` or `{name}` segments and a trailing `**`.
    func record(_ table: [(path: String, method: String)]) {
        routes.withLockedValue { routes in
            routes = table.map { Route(segments: $0.path.split(separator: "/"), method: $0.method) }
        }
    }

    /// The methods `path` takes, sorted; empty when no route has that path.
    func methods(for path: String) -> [String] {
        let segments = path.split(separator: "/")
        let methods = routes.withLockedValue { routes in
            routes.filter { Self.matches($0.segments, segments) }.map(\.method)
        }
        return Set(methods).sorted()
    }

    private static func matches(_ pattern: [Substring], _ path: [Substring]) -> Bool {
        for (index, part) in pattern.enumerated() {
            if part == "**" { return path.count > index }
            guard index < path.count else { return false }
            if part.hasPrefix(":") || (part.hasPrefix("{") && part.hasSuffix("}")) { continue }
            if part != path[index] { return false }
        }
        return pattern.count == path.count
    }
}
