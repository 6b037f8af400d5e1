import Foundation
import HTTPTypes

/// What `kernel_call` can ask: the REST writes, by name, with the same
/// bodies and answers (docs/protocol.md).
enum KernelOperations {
    /// Runs `operation` for `context`; returns the REST status and JSON body.
    static func perform(_ operation: String, target: String, body: [UInt8], kernel: Kernel?,
                        context: RequestContext?) async -> (Int, Data) {
        do {
            guard let kernel, let context else { throw APIError.unauthorized("kernel_call needs a principal from authenticate") }
            let json: JSONValue
            do {
                json = try JSONValue.parse(Data(body))
            } catch {
                throw APIError.badRequest("invalid_json", "the body is not valid JSON")
            }
            switch operation {
            case "chat.post":
                let (event, replayed) = try await kernel.threads.post(try PostMessageRequest(json: json), threadID: target, context: context)
                var answer = Data(#"{"replayed":\#(replayed),"event":"#.utf8)
                answer.append(event.json)
                answer.append(UInt8(ascii: "}"))
                return (replayed ? 200 : 201, answer)
            case "canvas.command":
                let result = try await kernel.canvases.commit(try CanvasCommand(json: json, limits: kernel.canvases.limits),
                                                              canvasID: target, context: context)
                return (result.replayed ? 200 : 201, result.json.encoded())
            case "gesture.start":
                let gesture = try await kernel.gestures.start(canvasID: target, body: json, context: context)
                return (201, gesture.json.encoded())
            case "gesture.append":
                let (gesture, event) = try await kernel.gestures.append(gestureID: target, canvasID: nil, body: json, context: context)
                return (200, GestureRoutes.appended(gesture, event).encoded())
            case "gesture.end":
                return (200, try await kernel.gestures.end(gestureID: target, canvasID: nil, context: context).json.encoded())
            default:
                throw APIError.badRequest("unknown_operation",
                                          "no kernel operation \"\(operation.prefix(60))\" (chat.post, canvas.command, gesture.start, gesture.append, gesture.end)")
            }
        } catch let error as APIError {
            var members = error.details
            members["code"] = .string(error.code)
            members["message"] = .string(error.message)
            return (error.status.code, JSONValue.object(["error": .object(members)]).encoded())
        } catch {
            return (500, Data(#"{"error":{"code":"internal","message":"internal error"}}"#.utf8))
        }
    }
}
