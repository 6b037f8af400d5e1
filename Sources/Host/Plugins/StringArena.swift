import PluginAPI

/// Copies of strings that stay put while C reads views of them; freed
/// together when the arena goes away. For building `ns_str` arrays (headers,
/// claims, path parameters) that a plugin reads during one call.
///
/// THREAD: one at a time (shared only under a lock, as `RequestViews` does).
final class StringArena: @unchecked Sendable {
    private var blocks: [UnsafeMutableBufferPointer<CChar>] = []

    /// A view of a copy of `text`, valid as long as the arena.
    func view(_ text: String) -> ns_str {
        let utf8 = Array(text.utf8)
        let copy = UnsafeMutableBufferPointer<CChar>.allocate(capacity: max(utf8.count, 1))
        for (index, byte) in utf8.enumerated() { copy[index] = CChar(bitPattern: byte) }
        blocks.append(copy)
        return ns_str(ptr: UnsafePointer(copy.baseAddress), len: UInt64(utf8.count))
    }

    deinit {
        blocks.forEach { $0.deallocate() }
    }
}
