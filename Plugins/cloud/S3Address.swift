/// Where an S3 object is: path-style (`endpoint/bucket/key`, what
/// S3-compatible servers expect) or virtual-hosted (`bucket.endpoint/key`,
/// what AWS prefers), as a URL base, the `host` header and the canonical
/// path Signature V4 signs.
public struct S3Address: Sendable {
    public let scheme: String
    public let host: String
    public let port: Int?
    public let bucket: String
    public let virtualHosted: Bool

    public init(scheme: String, host: String, port: Int?, bucket: String, virtualHosted: Bool) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.bucket = bucket
        self.virtualHosted = virtualHosted
    }

    /// `key` nil addresses the bucket itself (for listing).
    public func location(_ key: String?) -> (base: String, host: String, path: String) {
        let port = self.port.map { ":\($0)" } ?? ""
        let keyPath = key.map { "/" + SigV4Signer.uriEncode($0, keepSlash: true) } ?? "/"
        if virtualHosted {
            let authority = "\(bucket).\(host)\(port)"
            return ("\(scheme)://\(authority)", authority, keyPath)
        }
        let authority = "\(host)\(port)"
        return ("\(scheme)://\(authority)", authority, "/\(bucket)" + (key == nil ? "" : keyPath))
    }
}
