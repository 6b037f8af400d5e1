import NIOConcurrencyHelpers
import NIOCore

/// The connections the listener holds, counted so that a flood is refused at
/// the door instead of exhausting the process's file descriptors.
///
/// Two limits: all connections, and per client address the connections that
/// have not yet sent a complete request head (the cheap way to hold a
/// server's sockets). When all slots are taken, a new connection replaces
/// the connection that has been quiet longest: one that has sent nothing
/// yet, a kept-alive one between requests, or one waiting out a refusal
/// held before it is answered. None of them costs its client anything it
/// can lose (HTTP lets a server close an idle connection at any time, and
/// clients open another; a held refusal's client is the one flooding), and
/// holding them is free for whoever wants to lock real clients out: a client
/// with no token at all could otherwise keep every slot by sending one
/// request per connection each idle timeout. Only when every connection is
/// busy (a request in progress, a stream, a WebSocket: each bounded by its
/// own limits) is the newcomer refused.
///
/// Called from every event loop; one lock, held briefly.
final class ConnectionCount: Sendable {
    /// Why a new connection was refused.
    enum Refusal: Error {
        case full
        case tooManyPending
    }

    /// What a connection is doing, as far as the count cares.
    enum Phase: String, Sendable {
        /// Accepted, and no request head complete yet.
        case silent
        /// A request in progress: being read, answered, or streaming.
        case busy
        /// Kept alive between requests, its last answer on the wire.
        case idle
        /// A request whose refusal is held before it is answered (a failed
        /// credential, a rate or a cap reached): its client is the one
        /// flooding, so its connection may be closed to make room. A client
        /// that kept every connection waiting on a held refusal would
        /// otherwise hold them all busy.
        case held
        case closed
    }

    /// One admitted connection, handed back when its phase changes. Its
    /// phase and links are read and written only under the count's lock.
    final class Ticket: @unchecked Sendable {
        /// The connection of the request this task serves, if it came
        /// through the listener (set around each request's handling).
        @TaskLocal static var current: Ticket?

        let address: String
        let channel: any Channel
        fileprivate let count: ConnectionCount
        fileprivate var phase = Phase.silent
        /// Run once the connection is next idle or closed: what the requests
        /// it serves now hold until their answers are on the wire.
        fileprivate var whenQuiet: [@Sendable () -> Void] = []
        /// Closed to make room: never queued again.
        fileprivate var evicted = false
        /// Neighbours in the queue of quiet connections.
        fileprivate var older: Ticket?
        fileprivate var newer: Ticket?
        fileprivate var queued = false

        init(address: String, channel: any Channel, count: ConnectionCount) {
            self.address = address
            self.channel = channel
            self.count = count
        }

        /// Runs `release` once every request the connection serves now is
        /// answered and on the wire, or the connection closed (at once if it
        /// has closed already).
        func untilQuiet(_ release: @escaping @Sendable () -> Void) {
            let closed = count.state.withLockedValue { _ in
                guard phase != .closed else { return true }
                whenQuiet.append(release)
                return false
            }
            if closed { release() }
        }
    }

    /// Quiet connections (silent, idle, held), the one quiet longest first: a list
    /// threaded through the tickets, so joining and leaving it cost nothing
    /// however many connections there are.
    fileprivate struct State {
        var open = 0
        var pending: [String: Int] = [:]
        var oldestQuiet: Ticket?
        var newestQuiet: Ticket?

        mutating func enqueue(_ ticket: Ticket) {
            guard !ticket.queued, !ticket.evicted else { return }
            ticket.queued = true
            ticket.older = newestQuiet
            newestQuiet?.newer = ticket
            newestQuiet = ticket
            if oldestQuiet == nil { oldestQuiet = ticket }
        }

        mutating func dequeue(_ ticket: Ticket) {
            guard ticket.queued else { return }
            ticket.queued = false
            if let older = ticket.older { older.newer = ticket.newer } else { oldestQuiet = ticket.newer }
            if let newer = ticket.newer { newer.older = ticket.older } else { newestQuiet = ticket.older }
            ticket.older = nil
            ticket.newer = nil
        }

        mutating func forgetPending(_ address: String) {
            let left = pending[address, default: 1] - 1
            pending[address] = left > 0 ? left : nil
        }
    }

    /// How far past `maxConnections` evictions may run while the evicted
    /// connections are still closing.
    private static let evictionSlack = 64

    let maxConnections: Int
    let maxPendingPerAddress: Int
    /// Told the phase of each connection closed to make room (for `/metrics`).
    private let onEviction: @Sendable (Phase) -> Void
    fileprivate let state = NIOLockedValueBox(State())

    init(maxConnections: Int, maxPendingPerAddress: Int, onEviction: @escaping @Sendable (Phase) -> Void = { _ in }) {
        self.maxConnections = maxConnections
        self.maxPendingPerAddress = maxPendingPerAddress
        self.onEviction = onEviction
    }

    /// Connections open now.
    var open: Int { state.withLockedValue { $0.open } }

    /// Admits a connection from `address`, or says why not.
    func admit(address: String, channel: any Channel) throws(Refusal) -> Ticket {
        let ticket = Ticket(address: address, channel: channel, count: self)
        let outcome: Result<(Ticket, Phase)?, Refusal> = state.withLockedValue { state in
            if state.pending[address, default: 0] >= maxPendingPerAddress { return .failure(.tooManyPending) }
            var evicted: (Ticket, Phase)?
            if state.open >= maxConnections {
                guard state.open < maxConnections + Self.evictionSlack, let oldest = state.oldestQuiet else {
                    return .failure(.full)
                }
                state.dequeue(oldest)
                oldest.evicted = true
                evicted = (oldest, oldest.phase)
            }
            state.open += 1
            state.pending[address, default: 0] += 1
            state.enqueue(ticket)
            return .success(evicted)
        }
        switch outcome {
        case .failure(let refusal):
            throw refusal
        case .success(let evicted):
            if let (oldest, phase) = evicted {
                onEviction(phase)
                oldest.channel.close(promise: nil)
            }
        }
        return ticket
    }

    /// A complete request head arrived: the connection is busy until its
    /// answer is on the wire, and no longer counts against its address's
    /// pending limit.
    func requestArrived(_ ticket: Ticket) {
        state.withLockedValue { state in
            guard ticket.phase == .silent || ticket.phase == .idle else { return }  // pipelined behind one in progress
            if ticket.phase == .silent { state.forgetPending(ticket.address) }
            ticket.phase = .busy
            state.dequeue(ticket)
        }
    }

    /// Everything the connection was asked is answered and on the wire: it
    /// waits for its next request, and may be closed to make room.
    func becameIdle(_ ticket: Ticket) {
        let released: [@Sendable () -> Void] = state.withLockedValue { state in
            guard ticket.phase == .busy else { return [] }
            ticket.phase = .idle
            state.enqueue(ticket)
            defer { ticket.whenQuiet = [] }
            return ticket.whenQuiet
        }
        for release in released { release() }
    }

    /// The connection closed.
    func release(_ ticket: Ticket) {
        let released: [@Sendable () -> Void] = state.withLockedValue { state in
            guard ticket.phase != .closed else { return [] }
            state.open -= 1
            if ticket.phase == .silent { state.forgetPending(ticket.address) }
            ticket.phase = .closed
            state.dequeue(ticket)
            defer { ticket.whenQuiet = [] }
            return ticket.whenQuiet
        }
        for release in released { release() }
    }

    /// Runs `hold`, the wait before a refusal is answered, with the current
    /// request's connection (if any) counted as quiet meanwhile: it may be
    /// closed to make room, and its client then gets no answer.
    static func holding(_ hold: () async throws -> Void) async rethrows {
        guard let ticket = Ticket.current else { return try await hold() }
        let count = ticket.count
        count.state.withLockedValue { state in
            guard ticket.phase == .busy else { return }
            ticket.phase = .held
            state.enqueue(ticket)
        }
        defer {
            count.state.withLockedValue { state in
                guard ticket.phase == .held else { return }
                ticket.phase = .busy
                state.dequeue(ticket)
            }
        }
        try await hold()
    }
}
