import Foundation
import NIOConcurrencyHelpers

/// The host's side of an `ns_principal *`: a verified `RequestContext` that
/// a transport holds for a connection, renewable in place with a fresh
/// credential for the same identity (`principal_renew`).
///
/// Plugins get a handle, not a pointer: a number the host looks up in
/// `PrincipalHandles` on every use, so a released or made-up handle is an
/// error (NS_ERR_INVALID_ARGUMENT), never a use-after-free.
final class Principal: Sendable {
    private let current: NIOLockedValueBox<RequestContext>
    /// Where this connection is counted for its user, given back on release.
    private let countedIn: UserConnections?

    /// `connections` has counted this principal already (`claim`); its
    /// release gives the count back.
    init(_ context: RequestContext, countedIn connections: UserConnections? = nil) {
        current = NIOLockedValueBox(context)
        countedIn = connections
    }

    /// The transport released its handle: the user holds one connection
    /// fewer (a renewal keeps the identity, so the context now names the
    /// user it was counted for).
    fileprivate func released() {
        countedIn?.release(context)
    }

    /// The context now (a renewal replaces it).
    var context: RequestContext { current.withLockedValue { $0 } }

    /// Replaces the context with `renewed` if it is the same identity.
    func renew(with renewed: RequestContext) -> Bool {
        current.withLockedValue { context in
            guard context.isSameIdentity(as: renewed) else { return false }
            context = renewed
            return true
        }
    }
}

/// The principals lent to plugins, by handle. Any thread; one lock.
enum PrincipalHandles {
    private struct Table {
        /// Never 0 (NULL), never reused; starts at a random point so a
        /// handle from an earlier process is not live in this one.
        var next = UInt.random(in: 1...(UInt(1) << 40))
        var live: [UInt: Principal] = [:]
    }

    private static let table = NIOLockedValueBox(Table())

    /// Lends `principal` to a plugin; the handle is live until `release`.
    static func lend(_ principal: Principal) -> OpaquePointer {
        let handle = table.withLockedValue { table -> UInt in
            defer { table.next += 1 }
            table.live[table.next] = principal
            return table.next
        }
        return OpaquePointer(bitPattern: handle)!
    }

    /// The principal behind a live handle; nil for NULL, a released or a made-up one.
    static func find(_ handle: OpaquePointer?) -> Principal? {
        guard let handle else { return nil }
        return table.withLockedValue { $0.live[UInt(bitPattern: handle)] }
    }

    /// `principal_release`: the handle is dead from now on. Unknown handles are ignored.
    static func release(_ handle: OpaquePointer?) {
        guard let handle else { return }
        let principal = table.withLockedValue { $0.live.removeValue(forKey: UInt(bitPattern: handle)) }
        principal?.released()
    }

    /// Handles lent and not yet released (for tests and metrics).
    static var liveCount: Int { table.withLockedValue { $0.live.count } }
}
