import NIOConcurrencyHelpers

/// Whether the node should receive traffic: `/readyz` answers from this.
///
/// Starting until every plugin has started and the port is bound; draining
/// once a shutdown signal arrives, so a load balancer stops sending first.
public final class Readiness: Sendable {
    public enum State: String, Sendable {
        case starting, ready, draining
    }

    private let state = NIOLockedValueBox(State.starting)

    public init() {}

    public var current: State { state.withLockedValue { $0 } }

    public func set(_ new: State) { state.withLockedValue { $0 = new } }
}
