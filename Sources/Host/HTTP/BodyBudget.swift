import Synchronization

/// The request bodies a node reads at once, in bytes, all requests
/// together (`limits.max_body_bytes_in_flight`).
///
/// A JSON body is held whole until it is parsed, and a client may send it as
/// slowly as `body_timeout_seconds` allows between parts. Without a shared
/// bound, many connections each sending a large body slowly would hold
/// `max_connections` times `max_body_bytes`. Each body reserves what it may
/// become before a byte of it is read (its declared length, or the body
/// limit when it declares none) and gives it back once parsed; a body that
/// finds no room is answered 503 `server_busy` at once.
///
/// THREAD: any.
final class BodyBudget: Sendable {
    let limit: Int
    private let reserved = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = limit
    }

    /// Reserves `bytes`; false, and nothing reserved, when that would pass the limit.
    func reserve(_ bytes: Int) -> Bool {
        var current = reserved.load(ordering: .relaxed)
        while true {
            guard current + bytes <= limit else { return false }
            let (exchanged, original) = reserved.compareExchange(expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    func release(_ bytes: Int) {
        reserved.subtract(bytes, ordering: .relaxed)
    }

    /// Bytes reserved now.
    var inUse: Int { reserved.load(ordering: .relaxed) }
}
