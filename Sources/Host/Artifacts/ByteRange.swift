/// One `Range: bytes=...` request (RFC 9110 §14.1.2), resolved against an
/// object's size. Several ranges in one header are not served (416).
struct ByteRange: Equatable {
    let offset: UInt64
    let length: UInt64

    var last: UInt64 { offset + length - 1 }

    /// What a well-formed header asks for, before the object's size is
    /// weighed: read first, so a malformed header is refused even when a
    /// precondition (`If-None-Match`) would answer 304.
    enum Request: Equatable {
        /// `bytes=FIRST-` or `bytes=FIRST-LAST`.
        case from(UInt64, through: UInt64?)
        /// `bytes=-SUFFIX`: the last SUFFIX bytes.
        case suffix(UInt64)

        /// nil when there is no header; throws 416 `invalid_range` for a
        /// malformed one (with the object's `size`, as every range error).
        init?(_ header: String?, size: UInt64) throws {
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
            if first.isEmpty {
                self = .suffix(try number(last))
                return
            }
            let start = try number(first)
            let end = last.isEmpty ? nil : try number(last)
            if let end, end < start { throw invalid }
            self = .from(start, through: end)
        }

        /// The bytes of an object of `size` this asks for; 416
        /// `range_not_satisfiable` when none of them exist.
        func resolve(size: UInt64) throws -> ByteRange {
            let unsatisfiable = KernelError(.rangeNotSatisfiable, code: "range_not_satisfiable",
                                            message: "the range is outside the object's \(size) bytes", details: ["size": .number(Double(size))])
            switch self {
            case .suffix(let suffix):
                guard suffix > 0, size > 0 else { throw unsatisfiable }
                let length = min(suffix, size)
                return ByteRange(offset: size - length, length: length)
            case .from(let start, let end):
                guard start < size else { throw unsatisfiable }
                return ByteRange(offset: start, length: min(end ?? (size - 1), size - 1) - start + 1)
            }
        }
    }
}
