/// Compact JSON text for a `JSONValue`, byte for byte what Foundation's
/// `JSONEncoder` writes with `.sortedKeys` and `.withoutEscapingSlashes`
/// (stored events, command fingerprints and hashes keep their bytes), but
/// without its nesting limit and without a failure path.
extension JSONValue {
    /// Appends the value's JSON text to `bytes`.
    func write(to bytes: inout [UInt8]) {
        write(to: &bytes, stoppingPast: .max)
    }

    /// The length of the value's JSON text, or nil when it is longer than
    /// `limit`. The work stops there, however large the value: copies share
    /// their parts (`JSONPatch`), so a small value in memory can stand for
    /// more text than memory holds.
    func encodedSize(atMost limit: Int) -> Int? {
        var bytes: [UInt8] = []
        return write(to: &bytes, stoppingPast: limit) ? bytes.count : nil
    }

    /// Appends the value's JSON text to `bytes`; stops, returning false, as
    /// soon as `bytes` holds more than `limit`.
    @discardableResult
    private func write(to bytes: inout [UInt8], stoppingPast limit: Int) -> Bool {
        switch self {
        case .null: bytes.append(contentsOf: "null".utf8)
        case .bool(let flag): bytes.append(contentsOf: (flag ? "true" : "false").utf8)
        case .number(let number): Self.write(number, to: &bytes)
        case .string(let text): Self.write(text, to: &bytes)
        case .array(let elements):
            bytes.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                guard element.write(to: &bytes, stoppingPast: limit) else { return false }
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let members):
            bytes.append(UInt8(ascii: "{"))
            for (index, key) in members.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                Self.write(key, to: &bytes)
                bytes.append(UInt8(ascii: ":"))
                guard members[key]!.write(to: &bytes, stoppingPast: limit) else { return false }
            }
            bytes.append(UInt8(ascii: "}"))
        }
        return bytes.count <= limit
    }

    /// Whole numbers up to 2^53 as integers (negative zero as 0), the rest
    /// in Swift's shortest round-tripping form. The parser admits no NaN or
    /// infinity, so none reaches here.
    private static func write(_ number: Double, to bytes: inout [UInt8]) {
        if number.rounded() == number, abs(number) <= 9_007_199_254_740_992 {
            bytes.append(contentsOf: String(Int64(number)).utf8)
        } else {
            bytes.append(contentsOf: number.description.utf8)
        }
    }

    private static let hex = Array("0123456789abcdef".utf8)

    private static func write(_ text: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): bytes.append(contentsOf: #"\\"#.utf8)
            case 0x0A: bytes.append(contentsOf: #"\n"#.utf8)
            case 0x0D: bytes.append(contentsOf: #"\r"#.utf8)
            case 0x09: bytes.append(contentsOf: #"\t"#.utf8)
            case 0x08: bytes.append(contentsOf: #"\b"#.utf8)
            case 0x0C: bytes.append(contentsOf: #"\f"#.utf8)
            case 0..<0x20:
                bytes.append(contentsOf: #"\u00"#.utf8)
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0xF)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
