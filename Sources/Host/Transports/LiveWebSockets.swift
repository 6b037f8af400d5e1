import NIOConcurrencyHelpers

/// The WebSockets open now, so a draining node can close each with 1001
/// ("going away") and the client reconnects elsewhere with its last seq.
/// A socket is here from its handshake until it finishes.
public final class LiveWebSockets: Sendable {
    private let sockets = NIOLockedValueBox([ObjectIdentifier: HostWebSocket]())

    func add(_ socket: HostWebSocket) {
        let id = ObjectIdentifier(socket)
        sockets.withLockedValue { $0[id] = socket }
        let registered = socket.whenFinished { [sockets] in sockets.withLockedValue { _ = $0.removeValue(forKey: id) } }
        if !registered { sockets.withLockedValue { _ = $0.removeValue(forKey: id) } }
    }

    /// How many are open now (for /metrics).
    var count: Int { sockets.withLockedValue { $0.count } }

    /// Where each open socket's frames wait (for /metrics).
    var connectionSinks: [ConnectionSink] { sockets.withLockedValue { $0.values.map(\.sink) } }

    func closeAll(reason: String) {
        for socket in sockets.withLockedValue({ Array($0.values) }) { socket.close(code: 1001, reason: reason) }
    }
}
