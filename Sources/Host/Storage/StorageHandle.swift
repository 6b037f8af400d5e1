import Synchronization

/// A storage plugin's upload or reader state (`void *`), released through
/// its vtable exactly once: by the first of `put_finish`, `put_abort` or
/// `get_close`, or, should every path forget it (a client that left before
/// its answer began), when the last reference goes.
///
/// The header promises plugins that the host calls `put_abort`/`get_close`
/// at most once per handle, and never after `put_finish`: a plugin cannot
/// make freeing its own state safe to repeat.
final class StorageHandle: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer?
    private let releaseIfForgotten: @Sendable (UnsafeMutableRawPointer?) -> Void
    private let claimed = Atomic<Bool>(false)

    init(_ handle: UnsafeMutableRawPointer?, releaseIfForgotten: @escaping @Sendable (UnsafeMutableRawPointer?) -> Void) {
        self.handle = handle
        self.releaseIfForgotten = releaseIfForgotten
    }

    /// True for the one caller that may hand the state back to the plugin.
    func claim() -> Bool {
        !claimed.exchange(true, ordering: .acquiringAndReleasing)
    }

    deinit {
        if claim() { releaseIfForgotten(handle) }
    }
}
