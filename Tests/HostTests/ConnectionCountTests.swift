import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
@testable import NorthstarHost
import Testing

/// The listener's connections (`limits.max_connections`): when every slot is
/// taken, the connection quiet longest (silent, or kept alive between
/// requests) makes room; a busy one never does.
@Suite struct ConnectionCountTests {
    /// A count whose evictions are recorded, and connections that know when they were closed.
    private final class Fixture: Sendable {
        let evictions = NIOLockedValueBox<[ConnectionCount.Phase]>([])
        let count: ConnectionCount

        init(max: Int, pendingPerAddress: Int = 100) {
            let evictions = self.evictions
            count = ConnectionCount(maxConnections: max, maxPendingPerAddress: pendingPerAddress,
                                    onEviction: { phase in evictions.withLockedValue { $0.append(phase) } })
        }

        /// Admits a connection from `address`, released once its channel closes.
        func connect(_ address: String = "10.0.0.1") throws -> Connection {
            let channel = EmbeddedChannel()
            let ticket = try count.admit(address: address, channel: channel)
            let closed = NIOLockedValueBox(false)
            let count = self.count
            channel.closeFuture.whenComplete { _ in
                closed.withLockedValue { $0 = true }
                count.release(ticket)
            }
            return Connection(ticket: ticket, channel: channel, closed: closed)
        }
    }

    private struct Connection {
        let ticket: ConnectionCount.Ticket
        let channel: EmbeddedChannel
        let closed: NIOLockedValueBox<Bool>
        var isClosed: Bool {
            channel.embeddedEventLoop.run()  // the close's callbacks
            return closed.withLockedValue { $0 }
        }
    }

    /// A connection that asked once and was answered: kept alive between requests.
    private func idle(_ fixture: Fixture) throws -> Connection {
        let connection = try fixture.connect()
        fixture.count.requestArrived(connection.ticket)
        fixture.count.becameIdle(connection.ticket)
        return connection
    }

    @Test("past the limit a newcomer replaces the connection quiet longest, silent or idle alike")
    func theQuietestMakesRoom() throws {
        let fixture = Fixture(max: 3)
        let silent = try fixture.connect()
        let keptAlive = try idle(fixture)
        let busy = try fixture.connect()
        fixture.count.requestArrived(busy.ticket)

        let first = try fixture.connect()
        #expect(silent.isClosed && !keptAlive.isClosed && !busy.isClosed && !first.isClosed)
        let second = try fixture.connect()
        #expect(keptAlive.isClosed && !busy.isClosed && !second.isClosed)
        #expect(fixture.evictions.withLockedValue { $0 } == [.silent, .idle])
        #expect(fixture.count.open == 3)
    }

    @Test("a connection that asks again goes to the back of the queue")
    func askingAgainMovesToTheBack() throws {
        let fixture = Fixture(max: 2)
        let older = try idle(fixture)
        let newer = try idle(fixture)
        fixture.count.requestArrived(older.ticket)
        fixture.count.becameIdle(older.ticket)

        _ = try fixture.connect()
        #expect(newer.isClosed && !older.isClosed)
    }

    @Test("when every connection is busy the newcomer is refused, and a busy one that goes idle makes room again")
    func busyConnectionsAreNeverReplaced() throws {
        let fixture = Fixture(max: 2)
        let streams = try (0..<2).map { _ in try fixture.connect() }
        for stream in streams { fixture.count.requestArrived(stream.ticket) }
        #expect(throws: ConnectionCount.Refusal.full) { try fixture.connect() }
        #expect(!streams[0].isClosed && !streams[1].isClosed && fixture.count.open == 2)
        #expect(fixture.evictions.withLockedValue { $0 }.isEmpty)

        fixture.count.becameIdle(streams[1].ticket)
        _ = try fixture.connect()
        #expect(streams[1].isClosed && !streams[0].isClosed)
    }

    @Test("only silent connections count against their address's pending limit")
    func pendingCountsSilentOnly() throws {
        let fixture = Fixture(max: 10, pendingPerAddress: 2)
        let first = try fixture.connect()
        _ = try fixture.connect()
        #expect(throws: ConnectionCount.Refusal.tooManyPending) { try fixture.connect() }
        fixture.count.requestArrived(first.ticket)
        _ = try fixture.connect()
        #expect(throws: ConnectionCount.Refusal.tooManyPending) { try fixture.connect() }
        // Idle again after its answer, it still does not count: it has sent a request.
        fixture.count.becameIdle(first.ticket)
        #expect(throws: ConnectionCount.Refusal.tooManyPending) { try fixture.connect() }
        _ = try fixture.connect("10.0.0.2")
    }

    @Test("an evicted connection is never queued again, and its close is counted once")
    func anEvictedConnectionIsGoneForGood() throws {
        let count = ConnectionCount(maxConnections: 1, maxPendingPerAddress: 10)
        // Admitted without a release on close: the close is seen later, by hand.
        let victim = try count.admit(address: "10.0.0.1", channel: EmbeddedChannel())
        count.requestArrived(victim)
        count.becameIdle(victim)
        let newcomer = try count.admit(address: "10.0.0.2", channel: EmbeddedChannel())
        // Evicted, and before its close is seen it finishes one more request.
        count.requestArrived(victim)
        count.becameIdle(victim)
        count.requestArrived(newcomer)
        // The newcomer is busy and the victim gone: nothing left to make room.
        #expect(throws: ConnectionCount.Refusal.full) { try count.admit(address: "10.0.0.3", channel: EmbeddedChannel()) }
        count.release(victim)
        #expect(count.open == 1)
        count.release(newcomer)
        count.release(newcomer)
        #expect(count.open == 0)
    }

    @Test("what a request holds until its answer is on the wire is let go once, when the connection is next idle or closes")
    func untilQuietRunsOnce() throws {
        let fixture = Fixture(max: 10)
        let runs = NIOLockedValueBox(0)
        let connection = try fixture.connect()
        fixture.count.requestArrived(connection.ticket)
        connection.ticket.untilQuiet { runs.withLockedValue { $0 += 1 } }
        #expect(runs.withLockedValue { $0 } == 0)
        fixture.count.becameIdle(connection.ticket)
        fixture.count.requestArrived(connection.ticket)
        fixture.count.becameIdle(connection.ticket)
        #expect(runs.withLockedValue { $0 } == 1)

        fixture.count.requestArrived(connection.ticket)
        connection.ticket.untilQuiet { runs.withLockedValue { $0 += 1 } }
        connection.channel.close(promise: nil)
        #expect(connection.isClosed && runs.withLockedValue { $0 } == 2)
        connection.ticket.untilQuiet { runs.withLockedValue { $0 += 1 } }  // closed already: at once
        #expect(runs.withLockedValue { $0 } == 3)
    }

    @Test("a request whose refusal is held may be closed to make room while it waits, and is busy again after")
    func aHeldRefusalMayMakeRoom() async throws {
        let fixture = Fixture(max: 1)
        let flooding = try fixture.connect()
        fixture.count.requestArrived(flooding.ticket)
        await ConnectionCount.Ticket.$current.withValue(flooding.ticket) {
            await ConnectionCount.holding {}
        }
        #expect(throws: ConnectionCount.Refusal.full) { try fixture.connect() }
        await ConnectionCount.Ticket.$current.withValue(flooding.ticket) {
            await ConnectionCount.holding {
                _ = try? fixture.connect()
            }
        }
        #expect(flooding.isClosed)
        #expect(fixture.evictions.withLockedValue { $0 } == [.held])
    }
}
