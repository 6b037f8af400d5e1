import Foundation

/// Checks the names clients give objects, before any key is built from them.
///
/// A name is checked as the client meant it, and again after percent-
/// decoding (up to three rounds), so `%2e%2e`, `%252e%252e` and `%2F` are
/// refused as `..` and `/` are: whatever decodes the key later (a proxy, a
/// backend's URL handling, a sync tool) never sees a traversal.
enum ObjectName {
    static let maxSegmentBytes = 255
    static let maxPathBytes = 1024
    static let maxDepth = 32

    /// One path segment: a filename.
    static func segment(_ name: String, field: String) throws -> String {
        var candidate = name
        for _ in 0..<4 {
            try check(candidate, field: field)
            guard let decoded = candidate.removingPercentEncoding, decoded != candidate else { break }
            candidate = decoded
        }
        return name
    }

    /// A media path: segments joined by `/`, each a valid segment.
    static func path(_ path: String, field: String) throws -> String {
        guard !path.isEmpty else { throw KernelError.invalid("invalid_\(field)", "\(field): required") }
        guard path.utf8.count <= maxPathBytes else {
            throw KernelError.invalid("invalid_\(field)", "\(field): at most \(maxPathBytes) bytes")
        }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard segments.count <= maxDepth else {
            throw KernelError.invalid("invalid_\(field)", "\(field): at most \(maxDepth) segments")
        }
        for segment in segments { _ = try self.segment(segment, field: field) }
        return path
    }

    private static func check(_ name: String, field: String) throws {
        let reason: String? = if name.isEmpty {
            "must not be empty (nor have empty segments)"
        } else if name.utf8.count > maxSegmentBytes {
            "a name is at most \(maxSegmentBytes) bytes"
        } else if name == "." || name == ".." {
            "\".\" and \"..\" are not names"
        } else if name.contains("/") {
            "\"/\" is not allowed in a name"
        } else if name.contains("\\") {
            "backslashes are not allowed"
        } else if name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            "control characters (NUL, newline, ...) are not allowed"
        } else {
            nil
        }
        if let reason { throw KernelError.invalid("invalid_\(field)", "\(field): \(reason)") }
    }

    /// A content type as sent, or the default.
    static func contentType(_ value: String?) throws -> String {
        guard let value, !value.isEmpty else { return "application/octet-stream" }
        guard value.utf8.count <= 255, value.contains("/"),
              !value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value >= 0x7F }) else {
            throw KernelError.invalid("invalid_content_type", "Content-Type must be a media type like image/png (printable ASCII, at most 255 bytes)")
        }
        return value
    }
}
