import Crypto

extension SHA256.Digest {
    /// Lowercase hex, as SHA-256 sums are recorded, compared and shown everywhere.
    var hex: String { map { String(format: "%02x", $0) }.joined() }
}
