import Crypto

/// An upload to a cloud bucket as the host streams it: the bytes not yet
/// sent, in parts of the service's size, and the running SHA-256 the
/// backend records once all bytes are in.
open class BufferedUpload: @unchecked Sendable {
    public let key: String
    public let contentType: String
    /// Bytes received and not yet sent.
    public private(set) var pending: [UInt8] = []
    private var hasher = SHA256()

    public init(key: String, contentType: String) {
        self.key = key
        self.contentType = contentType.isEmpty ? "application/octet-stream" : contentType
    }

    public func append(_ chunk: [UInt8]) {
        hasher.update(data: chunk)
        pending += chunk
    }

    /// The next `size` bytes to send, once there are that many (or, with
    /// `keepingSome`, more than that many, so the last part always waits for
    /// the end of the upload); nil until then.
    public func nextPart(size: Int, keepingSome: Bool = false) -> [UInt8]? {
        guard keepingSome ? pending.count > size : pending.count >= size else { return nil }
        defer { pending.removeFirst(size) }
        return Array(pending.prefix(size))
    }

    /// What is left once the host has sent everything, for the last request.
    public func takeRest() -> [UInt8] {
        defer { pending = [] }
        return pending
    }

    public var sha256Hex: String { hasher.finalize().map { String(format: "%02x", $0) }.joined() }
}
