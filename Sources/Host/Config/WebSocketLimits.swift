import NIOCore

/// What one streaming connection may cost the node (`limits` in config).
public struct WebSocketLimits: Sendable {
    /// Bytes a connection (SSE response or WebSocket) may have queued and
    /// unsent before the transport is told to close it as a slow consumer.
    public var sendQueueBytes: Int
    /// The largest WebSocket message a client may send; a larger one closes
    /// the socket with 1009 (message too big).
    public var maxMessageBytes: Int
    /// The host pings every WebSocket this often and closes one whose peer
    /// did not answer the previous ping.
    public var pingIntervalSeconds: Int
    /// How long a client that stopped reading is waited for: a stream it
    /// fell behind on closes once its last word is read or after this; a
    /// catch-up it stopped reading ends as a slow consumer after this.
    public var slowConsumerGraceSeconds: Int

    public init(sendQueueBytes: Int = 256 << 10, maxMessageBytes: Int = 1 << 16, pingIntervalSeconds: Int = 30,
                slowConsumerGraceSeconds: Int = 60) {
        self.sendQueueBytes = sendQueueBytes
        self.maxMessageBytes = maxMessageBytes
        self.pingIntervalSeconds = pingIntervalSeconds
        self.slowConsumerGraceSeconds = slowConsumerGraceSeconds
    }

    /// The sink a streaming connection on `channel` writes through, within these limits.
    func sink(on channel: any Channel) -> ConnectionSink {
        ConnectionSink(channel: channel, limit: sendQueueBytes, grace: .seconds(Int64(slowConsumerGraceSeconds)))
    }
}
