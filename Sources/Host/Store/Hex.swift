import Crypto

extension SHA256.Digest {
    /// Lowercase hex, as SHA-256 sums are recorded, compared and shown everywhere.
    var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        return String(unsafeUninitializedCapacity: Self.byteCount * 2) { out in
            var index = 0
            for byte in self {
                out[index] = digits[Int(byte >> 4)]
                out[index + 1] = digits[Int(byte & 0x0f)]
                index += 2
            }
            return index
        }
    }
}
