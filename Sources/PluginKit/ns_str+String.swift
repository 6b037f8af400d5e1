import PluginAPI

extension ns_str {
    /// The text of a borrowed view, copied into a Swift string.
    /// Invalid UTF-8 is repaired, never trusted.
    public var string: String {
        guard let ptr, len > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: ptr, count: Int(len)), as: UTF8.self)
    }
}

extension ns_bytes {
    /// The bytes of a borrowed view, copied.
    public var array: [UInt8] {
        guard let ptr, len > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: ptr, count: Int(len)))
    }
}

/// Lends `text` to C as an `ns_str` for the duration of `body`.
public func withNSStr<Result>(_ text: String, _ body: (ns_str) throws -> Result) rethrows -> Result {
    var text = text
    return try text.withUTF8 { buffer in
        try body(ns_str(ptr: UnsafeRawPointer(buffer.baseAddress)?.assumingMemoryBound(to: CChar.self),
                        len: UInt64(buffer.count)))
    }
}

/// Lends `bytes` to C as an `ns_bytes` for the duration of `body`.
public func withNSBytes<Result>(_ bytes: [UInt8], _ body: (ns_bytes) throws -> Result) rethrows -> Result {
    try bytes.withUnsafeBufferPointer { buffer in
        try body(ns_bytes(ptr: buffer.baseAddress, len: UInt64(buffer.count)))
    }
}
