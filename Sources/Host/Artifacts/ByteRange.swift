/// One `Range: bytes=...` request (RFC 9110 §14.1.2), resolved against an
/// object's size. Several ranges in one header are not served (416).
struct ByteRange: Equatable {
    let offset: UInt64
    let length: UInt64

    var last: UInt64 { offset + length - 1 }

    /// nil when there is no header; throws 416 `invalid_range` for a
    /// malformed one and 416 `range_not_satisfiable` past the end.
    static func parse(_ header: String?, size: UInt64) throws -> ByteRange? {
        guard let header else { return nil }
        let invalid = KernelError(.rangeNotSatisfiable, code: "invalid_range",
                               message: "Range must be one \"bytes=FIRST-LAST\", \"bytes=FIRST-\" or \"bytes=-SUFFIX\"",
                               details: ["size": .number(Double(size))])
        guard header.hasPrefix("bytes=") else { throw invalid }
        let spec = header.dropFirst(6).trimmingHeaderWhitespace
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { throw invalid }
        let first = String(spec[..<dash]), last = String(spec[spec.index(after: dash)...])
        func number(_ text: String) throws -> UInt64 {
            guard !text.isEmpty, text.count <= 19, text.allSatisfy({ $0.isASCII && $0.isNumber }), let value = UInt64(text) else { throw invalid }
            return value
        }
        let unsatisfiable = KernelError(.rangeNotSatisfiable, code: "range_not_satisfiable",
                                     message: "the range is outside the object's \(size) bytes", details: ["size": .number(Double(size))])
        if first.isEmpty {
            let suffix = try number(last)
            guard suffix > 0, size > 0 else { throw unsatisfiable }
            let length = min(suffix, size)
            return ByteRange(offset: size - length, length: length)
        }
        let start = try number(first)
        let end = last.isEmpty ? nil : try number(last)
        if let end, end < start { throw invalid }
        guard start < size else { throw unsatisfiable }
        return ByteRange(offset: start, length: min(end ?? (size - 1), size - 1) - start + 1)
    }
}

import Foundation
