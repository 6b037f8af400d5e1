import Foundation
import Logging
import NIOConcurrencyHelpers
import PostgresNIO
import ServiceLifecycle

/// Which nodes a cluster has: each node keeps a row in `northstar.nodes`,
/// refreshed every few seconds while it runs and removed when it stops, so
/// the console of any node can list them all. A node that died without
/// stopping drops out of the list once its row is older than `staleAfter`.
final class ClusterPresence: Sendable {
    static let interval = Duration.seconds(5)
    static let staleAfter = Duration.seconds(30)

    /// One node, as the console shows it.
    struct Member: Sendable {
        let id: String
        let address: String
        let version: String
        let state: String
        let startedAt: Date
        let seenAt: Date
    }

    let store: PostgresStore
    let nodeID = Identifier.make(prefix: "nd_")
    private let startedAt: Date
    /// `host:port` once the listener is bound.
    private let address = NIOLockedValueBox("")

    init(store: PostgresStore, startedAt: Date) {
        self.store = store
        self.startedAt = startedAt
    }

    /// The address other nodes and operators reach this one at.
    func listening(host: String, port: Int) {
        let shown = ["0.0.0.0", "::", ""].contains(host) ? ProcessInfo.processInfo.hostName : host
        address.withLockedValue { $0 = "\(shown):\(port)" }
    }

    /// Refreshes this node's row until cancelled, then removes it.
    func run(state: @escaping @Sendable () -> String) async {
        while !Task.isCancelled {
            // Listed once it listens: an address is what the row is for.
            guard !address.withLockedValue(\.isEmpty) else {
                try? await Task.sleep(for: .milliseconds(50))
                continue
            }
            do {
                try await refresh(state: state())
            } catch {
                // The store's own paths report an unreachable database; presence just tries again.
            }
            try? await Task.sleep(for: Self.interval)
        }
        // Cancelled: the node stops. In a task of its own, or the query would be cancelled too.
        await Task { [self] in
            _ = try? await store.client.query("DELETE FROM northstar.nodes WHERE id = \(nodeID)", logger: store.logger)
        }.value
    }

    func refresh(state: String) async throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let started = Int64(startedAt.timeIntervalSince1970 * 1000)
        let address = self.address.withLockedValue { $0 }
        try await store.client.query("""
            INSERT INTO northstar.nodes VALUES (\(nodeID), \(address), \(NorthstarVersion.current), \(state), \(started), \(now))
            ON CONFLICT (id) DO UPDATE SET address = excluded.address, state = excluded.state, seen_at_ms = excluded.seen_at_ms
            """, logger: store.logger)
    }

    /// The nodes seen within `staleAfter`, this one included, oldest first.
    func members() async throws -> [Member] {
        let since = Int64(Date().timeIntervalSince1970 * 1000) - Self.staleAfter.components.seconds * 1000
        return try await store.client.query("""
            SELECT id, address, version, state, started_at_ms, seen_at_ms FROM northstar.nodes
            WHERE seen_at_ms >= \(since) ORDER BY started_at_ms, id
            """, logger: store.logger).collect().map { row in
            let (id, address, version, state, started, seen) = try row.decode((String, String, String, String, Int64, Int64).self)
            return Member(id: id, address: address, version: version, state: state,
                          startedAt: Date(timeIntervalSince1970: Double(started) / 1000),
                          seenAt: Date(timeIntervalSince1970: Double(seen) / 1000))
        }
    }
}

/// Keeps this node listed among the cluster's nodes while it runs.
struct ClusterPresenceService: Service {
    let presence: ClusterPresence
    let readiness: Readiness

    func run() async throws {
        let readiness = self.readiness
        await cancelWhenGracefulShutdown { await presence.run(state: { readiness.current.rawValue }) }
    }
}
