import Foundation

/// The kernel's write operations, by name: the one registry REST routes and
/// `kernel_call` both dispatch through, so a transport's `post` and a REST
/// `POST` run the same code, with the same checks and the same answers.
enum KernelOperations {
    /// What an operation is given: the resource it acts on, the canvas the
    /// path names when there is one (REST checks the gesture belongs to it),
    /// and the request body.
    struct Input: Sendable {
        var target: String
        var canvasID: String?
        var body: JSONValue
    }

    /// What an operation answers: whether it created something (or replayed
    /// an earlier outcome), and the JSON body.
    struct Answer: Sendable {
        var created: Bool
        var body: Data
    }

    typealias Run = @Sendable (Kernel, Input, RequestContext) async throws -> Answer

    /// Every operation, by its `kernel_call` name (docs/protocol.md lists them).
    static let registry: [String: Run] = [
        "thread.create": { kernel, input, context in
            let thread = try await kernel.threads.create(try CreateResourceRequest(json: input.body), context: context)
            return Answer(created: true, body: thread.json(extra: ["head_seq": .number(0)]).encoded())
        },
        "canvas.create": { kernel, input, context in
            let canvas = try await kernel.canvases.create(try CreateResourceRequest(json: input.body), context: context)
            return Answer(created: true, body: canvas.json(extra: ["head_rev": .number(0), "document": .object([:])]).encoded())
        },
        "chat.post": { kernel, input, context in
            let (event, replayed) = try await kernel.threads.post(try PostMessageRequest(json: input.body), threadID: input.target,
                                                                  context: context)
            var body = Data(#"{"replayed":\#(replayed),"event":"#.utf8)
            body.append(event.json)
            body.append(UInt8(ascii: "}"))
            return Answer(created: !replayed, body: body)
        },
        "canvas.command": { kernel, input, context in
            let command = try CanvasCommand(json: input.body, limits: kernel.canvases.limits)
            let result = try await kernel.canvases.commit(command, canvasID: input.target, context: context)
            return Answer(created: !result.replayed, body: result.json.encoded())
        },
        "gesture.start": { kernel, input, context in
            Answer(created: true, body: try await kernel.gestures.start(canvasID: input.target, body: input.body, context: context).json.encoded())
        },
        "gesture.append": { kernel, input, context in
            let (gesture, event) = try await kernel.gestures.append(gestureID: input.target, canvasID: input.canvasID,
                                                                    body: input.body, context: context)
            return Answer(created: false, body: JSONValue.object(["gesture": gesture.json, "seq": .number(Double(event.seq))]).encoded())
        },
        "gesture.end": { kernel, input, context in
            let gesture = try await kernel.gestures.end(gestureID: input.target, canvasID: input.canvasID, context: context)
            return Answer(created: false, body: gesture.json.encoded())
        },
    ]

    /// Runs the operation `name` for `context`.
    /// - Throws: `KernelError` (`unknown_operation` for a name not in the registry).
    static func run(_ name: String, _ input: Input, kernel: Kernel, context: RequestContext) async throws -> Answer {
        guard let operation = registry[name] else {
            throw KernelError.invalid("unknown_operation",
                                      "no kernel operation \"\(name.prefix(60))\" (\(registry.keys.sorted().joined(separator: ", ")))")
        }
        return try await operation(kernel, input, context)
    }

    /// `kernel_call`: runs `operation` and answers with the REST status and
    /// JSON body a REST call would have got.
    static func perform(_ operation: String, target: String, body: [UInt8], kernel: Kernel?,
                        context: RequestContext?) async -> (Int, Data) {
        do {
            guard let kernel, let context else {
                throw KernelError.unauthenticated("kernel_call needs a live principal from authenticate")
            }
            guard !context.isExpired() else {
                throw KernelError(.unauthenticated, code: "token_expired",
                                  message: "the credential has expired; authenticate again (or renew it)")
            }
            try kernel.writeRates.admit(context)
            let json: JSONValue
            do {
                json = try JSONValue.parse(Data(body))
            } catch {
                throw KernelError.invalid("invalid_json", "the body is not valid JSON")
            }
            let answer = try await run(operation, Input(target: target, canvasID: nil, body: json), kernel: kernel, context: context)
            return (answer.created ? 201 : 200, answer.body)
        } catch let error as KernelError {
            // Counted as over REST, so a WebSocket app's conflicts show in /metrics too.
            if error.status == .conflict { kernel?.hub.metrics?.increment("northstar_conflicts_total", [("code", error.code)]) }
            return (Int(error.status.code), error.json.encoded())
        } catch {
            return (500, KernelError(.internalFailure, code: "internal", message: "internal error").json.encoded())
        }
    }
}
