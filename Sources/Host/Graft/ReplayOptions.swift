import Foundation

/// How to replay a gesture: `speed` (0.1 to 16; 0 or `pace=none` delivers
/// everything at once, for export) and where to start (`from_ms`, a time
/// offset, and/or after sample `after_seq`, to resume).
public struct ReplayOptions: Sendable, Equatable {
    public var speed: Double = 1
    public var fromMs: Double?
    public var paced: Bool { speed > 0 }

    public init(speed: Double = 1, fromMs: Double? = nil) {
        self.speed = speed
        self.fromMs = fromMs
    }

    /// Reads `speed=1.5&from_ms=200&pace=none` (a query string). Transports
    /// pass only these; anything else (a credential above all) is refused,
    /// never carried along in a stream name.
    public init(query: String) throws {
        var seen: Set<String> = []
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard seen.insert(parts[0]).inserted else {
                throw KernelError.invalid("invalid_replay_option", "\(parts[0].prefix(40)) is given twice")
            }
            let value = parts.count > 1 ? (parts[1].removingPercentEncoding ?? parts[1]) : ""
            switch parts[0] {
            case "speed":
                guard let number = Double(value), number.isFinite, number == 0 || (0.1...16).contains(number) else {
                    throw KernelError.invalid("invalid_speed", "speed: a number from 0.1 to 16 (0, or pace=none: all at once)")
                }
                speed = number
            case "from_ms":
                guard let number = Double(value), number.isFinite, number >= 0 else {
                    throw KernelError.invalid("invalid_from_ms", "from_ms: a time offset in milliseconds, >= 0")
                }
                fromMs = number
            case "pace":
                guard ["none", "original"].contains(value) else {
                    throw KernelError.invalid("invalid_pace", "pace: none (everything at once) or original")
                }
                if value == "none" { speed = 0 }
            default:
                throw KernelError.invalid("invalid_replay_option", "\(parts[0].prefix(40)): not a replay option (speed, from_ms, pace)")
            }
        }
    }
}
