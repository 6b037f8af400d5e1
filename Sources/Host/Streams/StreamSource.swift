/// What a transport's subscription reads from: a live stream
/// (`Subscription`) or a gesture replay (`GestureReplay`).
public protocol StreamSource: AnyObject, Sendable {
    /// The next item; nil once the source has nothing more.
    func next() async throws -> SubscriptionItem?
    /// Stops the source; `next` then returns nil.
    func cancel()
    /// The `seq` of the last event handed out.
    var lastDeliveredSeq: UInt64 { get }
    /// Whether running out (nil from `next`) means done, as a replay is,
    /// rather than closed by the server, as a live stream is.
    var completes: Bool { get }
}

extension Subscription: StreamSource {
    public var completes: Bool { false }
}
