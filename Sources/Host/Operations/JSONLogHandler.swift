import Foundation
import Logging
import NIOConcurrencyHelpers

/// One JSON object per line on standard error: `ts`, `level`, `logger`,
/// `msg`, then the line's metadata as members (a request's `request_id`,
/// `trace_id`, `tenant`, `route`, `status`, `ms`, `code`...). For log
/// pipelines that index fields. Nothing is added that the text format does
/// not show: credentials and query strings never reach a log line.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let label: String

    /// Lines from every thread go out whole, one at a time.
    private static let output = NIOLock()

    public init(label: String, level: Logger.Level) {
        self.label = label
        logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var members: [String: JSONValue] = [
            "ts": .string(Self.timestamp()), "level": .string(event.level.rawValue), "logger": .string(label),
            "msg": .string("\(event.message)"),
        ]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) where members[key] == nil {
            members[key] = Self.json(value)
        }
        let line = JSONValue.object(members).jsonText + "\n"
        Self.output.withLock { FileHandle.standardError.write(Data(line.utf8)) }
    }

    static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let text): .string(text)
        case .stringConvertible(let convertible): .string(convertible.description)
        case .array(let values): .array(values.map(json))
        case .dictionary(let members): .object(members.mapValues(json))
        }
    }

    /// UTC, to the millisecond: `2026-12-01T14:25:41.123Z`.
    static func timestamp() -> String {
        Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(Date())
    }
}
