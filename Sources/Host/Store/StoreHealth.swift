import Foundation
import NIOConcurrencyHelpers
import CSQLite

/// Whether the store can take writes now, as the writer last found it.
///
/// A write that fails because the disk is full or the database is read-only
/// is answered 503 with a code that says which (`store_full`,
/// `store_read_only`), `/readyz` turns 503 until a write succeeds again, and
/// reads go on being served meanwhile. Any thread.
public final class StoreHealth: Sendable {
    /// Why writes cannot succeed.
    public enum Problem: String, Sendable {
        case full = "store_full"
        case readOnly = "store_read_only"
        case failing = "store_unavailable"
    }

    private let problem = NIOLockedValueBox<Problem?>(nil)

    public init() {}

    /// Nil while writes succeed.
    public var current: Problem? { problem.withLockedValue { $0 } }

    func wrote() { problem.withLockedValue { $0 = nil } }

    /// Records `error` if it says the store cannot take writes, and returns
    /// the answer a client gets for it; other errors come back unchanged.
    func classify(_ error: any Error) -> any Error {
        guard let sqlite = error as? SQLiteError, let found = Self.problem(of: sqlite) else { return error }
        problem.withLockedValue { $0 = found }
        return KernelError(.unavailable, code: found.rawValue, message: Self.message(found))
    }

    /// Records `found` and returns the answer a client gets for it (a store
    /// out of reach, found without an SQLite error).
    func refuse(_ found: Problem) -> KernelError {
        problem.withLockedValue { $0 = found }
        return KernelError(.unavailable, code: found.rawValue, message: Self.message(found))
    }

    static func problem(of error: SQLiteError) -> Problem? {
        switch error.code & 0xFF {
        case SQLITE_FULL: .full
        case SQLITE_READONLY: .readOnly
        case SQLITE_IOERR, SQLITE_CANTOPEN: error.systemErrno == ENOSPC || error.systemErrno == EDQUOT ? .full
            : error.systemErrno == EROFS || error.systemErrno == EACCES ? .readOnly : .failing
        default: nil
        }
    }

    static func message(_ problem: Problem) -> String {
        switch problem {
        case .full: "the store's disk is full: writes are refused until space is freed; reads still work"
        case .readOnly: "the store is read-only: writes are refused until it is writable again; reads still work"
        case .failing: "the store could not write: writes are refused until it recovers; reads still work"
        }
    }
}
