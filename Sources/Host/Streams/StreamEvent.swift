import Foundation

/// One event of a stream, as stored and as delivered: StreamEvent v1
/// (`docs/schemas/stream-event.v1.json`).
///
/// `json` is the event encoded once, at append; every reader and every
/// subscriber gets these same bytes, so a replay is byte-identical to the
/// live delivery and nothing is re-encoded on the hot path.
public struct StreamEvent: Sendable, Equatable {
    public let stream: StreamName
    public let seq: UInt64
    public let id: String
    public let type: String
    public let json: Data
}

/// What a caller asks to append; the log assigns `seq`, `id` and `ts`.
public struct EventDraft: Sendable {
    public var stream: StreamName
    public var type: String
    public var actor: String
    public var traceparent: String
    public var rev: Int64?
    public var data: JSONValue

    public init(stream: StreamName, type: String, actor: String, traceparent: String, rev: Int64? = nil, data: JSONValue) {
        self.stream = stream
        self.type = type
        self.actor = actor
        self.traceparent = traceparent
        self.rev = rev
        self.data = data
    }

    /// The StreamEvent v1 JSON of this draft once the log has placed it.
    func encoded(seq: UInt64, id: String, timestamp: Date) -> Data {
        var members: [String: JSONValue] = [
            "v": .number(1), "id": .string(id), "stream": .string(stream.rawValue),
            "seq": .number(Double(seq)), "type": .string(type), "ts": .string(Self.format(timestamp)),
            "actor": .string(actor), "trace": .string(traceparent), "data": data,
        ]
        if let rev { members["rev"] = .number(Double(rev)) }
        return JSONValue.object(members).encoded()
    }

    /// RFC 3339 with milliseconds, always UTC.
    static func format(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}

/// A stream's name: `chat:<thread>`, `canvas:<canvas>` or `gesture:<id>`.
public struct StreamName: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) { self.rawValue = rawValue }

    public static func chat(_ threadID: String) -> StreamName { StreamName("chat:\(threadID)") }
    public static func canvas(_ canvasID: String) -> StreamName { StreamName("canvas:\(canvasID)") }

    public var description: String { rawValue }
}

/// A page of a stream, read from the log.
public struct EventPage: Sendable {
    /// The JSON a page holds at most, past its first event, when the reader
    /// names no budget of its own. Events carry up to a request body each, so
    /// a count alone would let one read hold a thousand bodies.
    public static let defaultMaxBytes = 1 << 20

    public let events: [StreamEvent]
    /// The last `seq` the stream has (0 when empty).
    public let headSeq: UInt64
    /// The first `seq` the log still holds (retention may have pruned older ones).
    public let firstSeq: UInt64
}
