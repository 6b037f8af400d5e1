import NIOConcurrencyHelpers
import NIOCore

/// The connections the listener holds, counted so that a flood is refused at
/// the door instead of exhausting the process's file descriptors.
///
/// Two limits: all connections, and per client address the connections that
/// have not yet sent a complete request head (the cheap way to hold a
/// server's sockets). When all slots are taken, a new connection replaces
/// the oldest one still silent, so an idle flood cannot lock real clients
/// out; only when every connection is busy is the newcomer refused.
/// Called from every event loop; one lock, held briefly.
final class ConnectionCount: Sendable {
    /// Why a new connection was refused.
    enum Refusal: Error {
        case full
        case tooManyPending
    }

    /// One admitted connection, handed back when its state changes.
    final class Ticket: Sendable {
        let address: String
        let channel: any Channel
        /// Set once the first request head arrived or the connection ended.
        let settled = NIOLockedValueBox(false)

        init(address: String, channel: any Channel) {
            self.address = address
            self.channel = channel
        }
    }

    private struct State {
        var open = 0
        var pending: [String: Int] = [:]
        /// Silent connections, oldest first (settled ones are skipped lazily).
        var silent: [Ticket] = []
        var silentStart = 0
    }

    /// How far past `maxConnections` evictions may run while the evicted
    /// connections are still closing.
    private static let evictionSlack = 64

    let maxConnections: Int
    let maxPendingPerAddress: Int
    private let state = NIOLockedValueBox(State())

    init(maxConnections: Int, maxPendingPerAddress: Int) {
        self.maxConnections = maxConnections
        self.maxPendingPerAddress = maxPendingPerAddress
    }

    /// Connections open now.
    var open: Int { state.withLockedValue { $0.open } }

    /// Admits a connection from `address`, or says why not.
    func admit(address: String, channel: any Channel) throws(Refusal) -> Ticket {
        let ticket = Ticket(address: address, channel: channel)
        let outcome: Result<Ticket?, Refusal> = state.withLockedValue { state in
            if state.pending[address, default: 0] >= maxPendingPerAddress { return .failure(.tooManyPending) }
            var evicted: Ticket?
            if state.open >= maxConnections {
                guard state.open < maxConnections + Self.evictionSlack, let oldest = Self.oldestSilent(in: &state) else {
                    return .failure(.full)
                }
                evicted = oldest
            }
            state.open += 1
            state.pending[address, default: 0] += 1
            state.silent.append(ticket)
            return .success(evicted)
        }
        switch outcome {
        case .failure(let refusal): throw refusal
        case .success(let evicted): evicted?.channel.close(promise: nil)
        }
        return ticket
    }

    /// Takes the oldest connection that has still sent nothing off the queue.
    private static func oldestSilent(in state: inout State) -> Ticket? {
        while state.silentStart < state.silent.count {
            let ticket = state.silent[state.silentStart]
            state.silentStart += 1
            if !ticket.settled.withLockedValue({ $0 }) { return ticket }
        }
        return nil
    }

    /// Drops settled tickets from the front of the queue, and compacts it.
    private static func trimSilent(in state: inout State) {
        while state.silentStart < state.silent.count, state.silent[state.silentStart].settled.withLockedValue({ $0 }) {
            state.silentStart += 1
        }
        if state.silentStart > 1024, state.silentStart * 2 > state.silent.count {
            state.silent.removeFirst(state.silentStart)
            state.silentStart = 0
        }
    }

    /// The connection sent a complete request head: it no longer counts
    /// against its address's pending limit.
    func requestArrived(_ ticket: Ticket) {
        guard settle(ticket) else { return }
        state.withLockedValue { state in
            Self.forgetPending(ticket.address, in: &state)
            Self.trimSilent(in: &state)
        }
    }

    /// The connection closed.
    func release(_ ticket: Ticket) {
        let wasPending = settle(ticket)
        state.withLockedValue { state in
            state.open -= 1
            if wasPending { Self.forgetPending(ticket.address, in: &state) }
            Self.trimSilent(in: &state)
        }
    }

    /// Marks the ticket settled; true if it was still pending.
    private func settle(_ ticket: Ticket) -> Bool {
        ticket.settled.withLockedValue { settled in
            defer { settled = true }
            return !settled
        }
    }

    private static func forgetPending(_ address: String, in state: inout State) {
        let left = state.pending[address, default: 1] - 1
        state.pending[address] = left > 0 ? left : nil
    }
}
