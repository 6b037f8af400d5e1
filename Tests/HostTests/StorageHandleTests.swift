import NIOConcurrencyHelpers
@testable import NorthstarHost
import Testing

/// A storage plugin's upload or reader state goes back to it exactly once:
/// the header promises `put_abort`/`get_close` at most once per handle, and
/// a handle every path forgot (a client that left before its answer) is
/// still released.
@Suite struct StorageHandleTests {
    @Test("only the first claim may release the handle, and a claimed handle is not released again")
    func claimedOnce() {
        let released = NIOLockedValueBox(0)
        do {
            let handle = StorageHandle(nil) { _ in released.withLockedValue { $0 += 1 } }
            #expect(handle.claim())
            #expect(!handle.claim())
            #expect(!handle.claim())
        }
        #expect(released.withLockedValue { $0 } == 0)
    }

    @Test("a handle nobody claimed is released when its last reference goes")
    func forgottenIsReleased() {
        let released = NIOLockedValueBox(0)
        let state = UnsafeMutableRawPointer(bitPattern: 0x1234)
        let seen = NIOLockedValueBox<UInt>(0)
        do {
            _ = StorageHandle(state) { handle in
                released.withLockedValue { $0 += 1 }
                seen.withLockedValue { $0 = UInt(bitPattern: handle) }
            }
        }
        #expect(released.withLockedValue { $0 } == 1)
        #expect(seen.withLockedValue { $0 } == 0x1234)
    }
}
