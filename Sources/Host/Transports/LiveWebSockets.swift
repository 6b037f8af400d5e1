import NIOConcurrencyHelpers

/// The WebSockets open now, so a draining node can close each with 1001
/// ("going away") and the client reconnects elsewhere with its last seq.
public final class LiveWebSockets: Sendable {
    private struct Weak: @unchecked Sendable { weak var socket: HostWebSocket? }
    private let sockets = NIOLockedValueBox([ObjectIdentifier: Weak]())

    func add(_ socket: HostWebSocket) {
        sockets.withLockedValue { sockets in
            sockets = sockets.filter { $0.value.socket != nil }
            sockets[ObjectIdentifier(socket)] = Weak(socket: socket)
        }
    }

    /// How many are open now (for /metrics).
    var count: Int { sockets.withLockedValue { $0.values.filter { $0.socket?.isOpen ?? false }.count } }

    func closeAll(reason: String) {
        let open = sockets.withLockedValue { sockets in
            defer { sockets.removeAll() }
            return sockets.values.compactMap(\.socket)
        }
        for socket in open { socket.close(code: 1001, reason: reason) }
    }
}
