import NIOConcurrencyHelpers

/// What ran, in order, from any thread: the order tests of queues read it.
final class Ran: Sendable {
    private let names = NIOLockedValueBox<[String]>([])
    func add(_ name: String) { names.withLockedValue { $0.append(name) } }
    var all: [String] { names.withLockedValue { $0 } }
}
