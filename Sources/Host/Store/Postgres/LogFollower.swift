import Logging
import NIOConcurrencyHelpers
import PostgresNIO
import ServiceLifecycle

/// Live delivery on a cluster: every node, the writer included, learns of
/// committed events from PostgreSQL notifications and reads them from the
/// log before handing them to its hub.
///
/// A notification carries no event, only `<seq> <stream>` (payloads are
/// capped at 8 KB). For a stream with local subscribers the follower reads
/// every event after the last one it published, so each stream reaches the
/// hub exactly in `seq` order with no holes: a notification that is lost or
/// late only delays its events until the next one for that stream, or until
/// the reconnect, after which every followed stream is read again.
final class LogFollower: Sendable {
    /// Events per read. Small, because an event may carry up to a request
    /// body: a read holds at most this many of them (the follower reads one
    /// stream at a time); a notification usually finds one new event anyway.
    static let pageSize = 32

    let store: PostgresStore
    let hub: StreamHub
    private let logger: Logger
    /// For each stream with local subscribers, the last seq handed to the hub.
    private let published = NIOLockedValueBox<[StreamName: UInt64]>([:])
    init(store: PostgresStore, hub: StreamHub, logger: Logger) {
        self.store = store
        self.hub = hub
        self.logger = logger
    }

    /// Listens until cancelled, reconnecting after a lost connection with a
    /// growing pause (0.1 s to 5 s).
    func run() async {
        var pause = Duration.milliseconds(100)
        var connectionID = 0
        while !Task.isCancelled {
            connectionID += 1
            do {
                let connection = try await PostgresConnection.connect(configuration: try store.address.connectionConfiguration(),
                                                                      id: connectionID, logger: logger)
                do {
                    try await connection.listen(on: PostgresStore.channel) { notifications in
                        // Listening now: what was committed while we were not is read once.
                        if connectionID > 1 { logger.notice("store notifications resumed; catching up live subscribers") }
                        await catchUp()
                        pause = .milliseconds(100)
                        for try await notification in notifications { await notified(notification.payload) }
                    }
                } catch {
                    try? await connection.close()
                    throw error
                }
                try? await connection.close()
            } catch {
                if Task.isCancelled { return }
                // /readyz turns 503 until a write gets through again (the store's recovery probe).
                _ = store.health.refuse(.failing)
                logger.warning("store notifications lost; reconnecting",
                               metadata: ["error": "\(PostgresStore.describe(error))", "retry_ms": "\(pause.components.seconds * 1000 + pause.components.attoseconds / 1_000_000_000_000_000)"])
            }
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .seconds(5))
        }
    }

    /// One notification: `<seq> <stream>`.
    func notified(_ payload: String) async {
        guard let space = payload.firstIndex(of: " "), let seq = UInt64(payload[..<space]), seq > 0,
              case let name = String(payload[payload.index(after: space)...]), !name.isEmpty else {
            logger.warning("store notification not understood", metadata: ["payload": "\(payload.prefix(200))"])
            return
        }
        let stream = StreamName(name)
        guard hub.subscriberCount(stream) > 0 else {
            // Nobody here follows it: a subscriber that comes reads the log first.
            published.withLockedValue { _ = $0.removeValue(forKey: stream) }
            return
        }
        let last = published.withLockedValue { $0[stream] } ?? seq - 1
        guard seq > last else { return }  // read already, with an earlier page
        await deliver(stream, after: last)
    }

    /// Reads and publishes every event of `stream` after `after`.
    private func deliver(_ stream: StreamName, after: UInt64) async {
        var cursor = after
        do {
            while true {
                let events = try await store.events(of: stream, after: cursor, limit: Self.pageSize)
                events.forEach(hub.publish)
                // Only what was read moves the cursor: a notification for a seq not
                // (yet) in the log must not make the follower skip the real one.
                guard let last = events.last?.seq else { return }
                cursor = last
                published.withLockedValue { $0[stream] = cursor }
                if events.count < Self.pageSize { return }
            }
        } catch {
            // What was not read is read with the stream's next notification, or after a reconnect.
            logger.warning("store read for live delivery failed", metadata: ["stream": "\(stream)", "error": "\(PostgresStore.describe(error))"])
        }
    }

    /// Every followed stream, read from where it was left.
    private func catchUp() async {
        for (stream, last) in published.withLockedValue({ $0 }) {
            await deliver(stream, after: last)
        }
    }
}

/// Feeds the hub from the cluster's log while the node runs.
struct LogFollowerService: Service {
    let follower: LogFollower

    func run() async throws {
        await cancelWhenGracefulShutdown { await follower.run() }
        follower.store.close()
    }
}
