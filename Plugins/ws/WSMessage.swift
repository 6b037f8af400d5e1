import Foundation

/// One message a client sends on a socket (docs/protocol.md, "WebSocket").
///
///     {"type": "subscribe",   "id": "1", "stream": "chat:<thread_id>", "after": 41}
///     {"type": "unsubscribe", "id": "2", "stream": "chat:<thread_id>"}
///     {"type": "post",        "id": "3", "thread_id": "...", "message": {"text": "hi"}}
///     {"type": "command",     "id": "4", "canvas_id": "...", "command": {"command_id": "...", "base_rev": 3, "ops": [...]}}
///     {"type": "ping",        "id": "5"}
///     {"type": "gesture.start",   "id": "6", "canvas_id": "...", "base_rev": 3}
///     {"type": "gesture.samples", "id": "7", "gesture_id": "...", "samples": [...]}
///     {"type": "gesture.end",     "id": "8", "gesture_id": "..."}
///     {"type": "replay",        "id": "9", "gesture_id": "...", "speed": 1.5, "from_ms": 0, "after": 0}
///     {"type": "replay.pause",  "id": "10", "gesture_id": "..."}
///     {"type": "replay.resume", "id": "11", "gesture_id": "..."}
///     {"type": "auth",          "id": "12", "token": "<a fresh token for the same tenant and user>"}
///
/// `id` (a string of up to 128 characters, or an integer) is echoed in the
/// answer so a client can match it to its request.
enum WSMessage {
    case subscribe(stream: String, after: UInt64)
    case unsubscribe(stream: String)
    /// A kernel operation: its name, the resource id, the REST body.
    case kernel(operation: String, target: String, body: Data)
    case ping
    /// A paced replay of a gesture: the stream name carries its options.
    case replay(gestureID: String, options: String, after: UInt64)
    case pauseReplay(gestureID: String)
    case resumeReplay(gestureID: String)
    /// A fresh credential for the socket's identity, before the current one runs out.
    case auth(token: String)

    /// A request that cannot be served: the stable code and why.
    struct Refusal: Error {
        let code: String
        let message: String
    }

    /// Parses a text message; the request id comes back even when the rest is refused.
    static func parse(_ payload: Data) -> (id: String, result: Result<WSMessage, Refusal>) {
        guard let object = (try? JSONSerialization.jsonObject(with: payload)) as? [String: Any] else {
            return ("null", .failure(Refusal(code: "invalid_json", message: "a message is one JSON object")))
        }
        guard let id = requestID(object["id"]) else {
            return ("null", .failure(Refusal(code: "invalid_id", message: "id: a string of 1 to 128 characters or an integer")))
        }
        do {
            return (id, .success(try message(object)))
        } catch let refusal as Refusal {
            return (id, .failure(refusal))
        } catch {
            return (id, .failure(Refusal(code: "invalid_message", message: "the message could not be read")))
        }
    }

    private static func message(_ object: [String: Any]) throws -> WSMessage {
        guard let type = object["type"] as? String else {
            throw Refusal(code: "missing_field", message: "type: required (subscribe, unsubscribe, post, command, ping, gesture.*, replay*)")
        }
        switch type {
        case "subscribe":
            return .subscribe(stream: try streamName(object), after: try sequence(object["after"]))
        case "unsubscribe":
            return .unsubscribe(stream: try streamName(object))
        case "post":
            return .kernel(operation: "chat.post", target: try identifier(object, "thread_id"), body: try body(object, "message"))
        case "command":
            return .kernel(operation: "canvas.command", target: try identifier(object, "canvas_id"), body: try body(object, "command"))
        case "ping":
            return .ping
        case "gesture.start":
            var body: [String: Any] = [:]
            if let rev = object["base_rev"] { body["base_rev"] = rev }
            return .kernel(operation: "gesture.start", target: try identifier(object, "canvas_id"),
                           body: try JSONSerialization.data(withJSONObject: body))
        case "gesture.samples":
            guard let samples = object["samples"] else { throw Refusal(code: "missing_field", message: "samples: required, an array") }
            return .kernel(operation: "gesture.append", target: try identifier(object, "gesture_id"),
                           body: try JSONSerialization.data(withJSONObject: ["samples": samples]))
        case "gesture.end":
            return .kernel(operation: "gesture.end", target: try identifier(object, "gesture_id"), body: Data("{}".utf8))
        case "replay":
            var options: [String] = []
            if let speed = object["speed"] {
                guard let number = speed as? NSNumber, !isBool(number) else { throw Refusal(code: "invalid_speed", message: "speed: a number") }
                options.append("speed=\(number.doubleValue)")
            }
            if let from = object["from_ms"] {
                guard let number = from as? NSNumber, !isBool(number) else { throw Refusal(code: "invalid_from_ms", message: "from_ms: a number") }
                options.append("from_ms=\(number.doubleValue)")
            }
            return .replay(gestureID: try identifier(object, "gesture_id"), options: options.joined(separator: "&"),
                           after: try sequence(object["after"]))
        case "replay.pause":
            return .pauseReplay(gestureID: try identifier(object, "gesture_id"))
        case "replay.resume":
            return .resumeReplay(gestureID: try identifier(object, "gesture_id"))
        case "auth":
            guard let token = object["token"] as? String, (1...8192).contains(token.utf8.count) else {
                throw Refusal(code: "missing_field", message: "token: required, a string of up to 8192 bytes")
            }
            return .auth(token: token)
        default:
            throw Refusal(code: "unknown_type", message: "type \(quoted(type.prefix(40))) is not one of subscribe, unsubscribe, post, command, "
                          + "ping, gesture.start, gesture.samples, gesture.end, replay, replay.pause, replay.resume, auth")
        }
    }

    /// The id as JSON text to echo: `null` when absent, nil when invalid.
    private static func requestID(_ value: Any?) -> String? {
        switch value {
        case nil: return "null"
        case let text as String where (1...128).contains(text.count): return quoted(text)
        case let number as NSNumber where !isBool(number) && number.doubleValue == number.doubleValue.rounded()
            && abs(number.doubleValue) < 1e15:
            return String(number.int64Value)
        default: return nil
        }
    }

    private static func streamName(_ object: [String: Any]) throws -> String {
        guard let stream = object["stream"] as? String, (1...200).contains(stream.utf8.count) else {
            throw Refusal(code: "invalid_stream", message: "stream: required, \"chat:<thread_id>\" or \"canvas:<canvas_id>\"")
        }
        return stream
    }

    private static func sequence(_ value: Any?) throws -> UInt64 {
        guard let value else { return 0 }
        guard let number = value as? NSNumber, !isBool(number), number.doubleValue >= 0,
              number.doubleValue == number.doubleValue.rounded(), number.doubleValue < 9e15 else {
            throw Refusal(code: "invalid_after", message: "after: the seq of the last event seen, an integer >= 0")
        }
        return number.uint64Value
    }

    private static func identifier(_ object: [String: Any], _ name: String) throws -> String {
        guard let id = object[name] as? String, (1...128).contains(id.utf8.count) else {
            throw Refusal(code: "missing_field", message: "\(name): required, a string")
        }
        return id
    }

    private static func body(_ object: [String: Any], _ name: String) throws -> Data {
        guard let body = object[name] as? [String: Any], let data = try? JSONSerialization.data(withJSONObject: body) else {
            throw Refusal(code: "missing_field", message: "\(name): required, an object (the same body as the REST call)")
        }
        return data
    }
}

/// `text` as a JSON string literal.
func quoted<Text: StringProtocol>(_ text: Text) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
