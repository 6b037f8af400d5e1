/// W3C trace context and request ids: taken from the request when well
/// formed, made up otherwise. Neither ever carries identity.
enum TraceContext {
    /// The request's `traceparent` if valid, or a new sampled one.
    static func traceparent(from header: String?) -> String {
        if let header, header.wholeMatch(of: /00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}/) != nil,
           !header.contains("00000000000000000000000000000000") {
            return header
        }
        return "00-\(hex(16))-\(hex(8))-01"
    }

    /// The request's `x-request-id` if it is short and plain, or a new one.
    static func requestID(from header: String?) -> String {
        if let header, (1...64).contains(header.count),
           header.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) {
            return header
        }
        return "req_\(hex(12))"
    }

    static func hex(_ bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in
            let byte = UInt8.random(in: 0...255, using: &generator)
            return String(byte, radix: 16).count == 1 ? "0" + String(byte, radix: 16) : String(byte, radix: 16)
        }.joined()
    }
}
