/// W3C trace context and request ids: taken from the request when well
/// formed, made up otherwise. Neither ever carries identity.
enum TraceContext {
    /// The request's `traceparent` if valid, or a new sampled one.
    static func traceparent(from header: String?) -> String {
        if let header, isWellFormed(traceparent: header) { return header }
        let random = RandomBytes.make(24)  // a trace id and a parent id, one draw
        return "00-\(hex(random.prefix(16)))-\(hex(random.suffix(8)))-01"
    }

    /// `00-<32 hex>-<16 hex>-<2 hex>`, lowercase, with a trace id and a
    /// parent id that are not all zeros (W3C calls those invalid). Checked byte by byte: a regex literal here cost about 64 µs
    /// per request (it is built on every call).
    static func isWellFormed(traceparent header: String) -> Bool {
        let bytes = Array(header.utf8)
        let zero = UInt8(ascii: "0"), dash = UInt8(ascii: "-")
        guard bytes.count == 55, bytes[0] == zero, bytes[1] == zero,
              bytes[2] == dash, bytes[35] == dash, bytes[52] == dash else { return false }
        func isHex(_ range: Range<Int>) -> Bool {
            bytes[range].allSatisfy { (zero...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
        }
        return isHex(3..<35) && isHex(36..<52) && isHex(53..<55) && bytes[3..<35].contains { $0 != zero }
            && bytes[36..<52].contains { $0 != zero }
    }

    /// The request's `x-request-id` if it is short and plain, or a new one.
    static func requestID(from header: String?) -> String {
        if let header, (1...64).contains(header.count),
           header.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) {
            return header
        }
        return "req_\(hex(12))"
    }

    /// `bytes` random bytes as lowercase hex, from one draw.
    static func hex(_ bytes: Int) -> String { hex(RandomBytes.make(bytes)) }

    private static func hex(_ bytes: some Collection<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 15)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
