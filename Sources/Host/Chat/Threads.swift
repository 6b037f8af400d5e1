import Crypto
import Foundation

/// Chat threads: create, read, post messages, read the stream.
public struct Threads: Sendable {
    let store: any EventStore
    let resolver: ResourceResolver

    /// Creates a thread owned by the context's tenant and env.
    public func create(_ request: CreateResourceRequest, context: RequestContext) async throws -> Resource {
        try await resolver.create(.thread, request, for: context)
    }

    /// Posts a message; with a `client_message_id`, retries return the first
    /// event instead of a second one.
    /// - Returns: the event, and whether it was written before.
    public func post(_ message: PostMessageRequest, threadID: String, context: RequestContext) async throws -> (StreamEvent, replayed: Bool) {
        let thread = try await resolver.resolve(.thread, id: threadID, for: context, access: .write)
        var data: [String: JSONValue] = ["text": .string(message.text)]
        if let extra = message.data { data["data"] = extra }
        if let id = message.clientMessageID { data["client_message_id"] = .string(id) }
        let draft = EventDraft(stream: thread.stream, type: "chat.message", actor: context.userID,
                               traceparent: context.traceparent, data: .object(data))
        switch try await store.append(draft, idempotencyKey: message.clientMessageID, fingerprint: message.clientMessageID == nil ? "" : message.fingerprint(actor: context.userID)) {
        case .appended(let event): return (event, false)
        case .replayed(let event): return (event, true)
        case .keyReused:
            throw KernelError(.conflict, code: "client_message_id_reused",
                           message: "client_message_id \"\(message.clientMessageID ?? "")\" was used for a different message")
        }
    }
}

/// The body of `POST /v1/threads` and `POST /v1/canvases`.
public struct CreateResourceRequest: Sendable {
    public var title: String?
    public var metadata: JSONValue

    /// Parses and checks a create body: `{"title"?: string, "metadata"?: object}`.
    public init(json: JSONValue) throws {
        var body = try BodyReader(json)
        title = try body.string("title", maxLength: 200)
        metadata = try body.object("metadata") ?? .object([:])
        guard metadata.encoded().count <= 16 * 1024 else {
            throw KernelError.invalid("field_too_large", "metadata: at most 16 KiB of JSON")
        }
        try body.finish()
    }
}

/// The body of `POST /v1/threads/{id}/messages`.
public struct PostMessageRequest: Sendable {
    public var clientMessageID: String?
    public var text: String
    public var data: JSONValue?

    /// Parses `{"text": string, "client_message_id"?: string, "data"?: object}`.
    public init(json: JSONValue) throws {
        var body = try BodyReader(json)
        clientMessageID = try body.string("client_message_id", maxLength: 128)
        if let id = clientMessageID, id.isEmpty || !id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.:".contains($0)) }) {
            throw KernelError.invalid("invalid_field", "client_message_id: 1 to 128 of A-Z a-z 0-9 - _ . :")
        }
        guard let text = try body.string("text", maxLength: 16 * 1024), !text.isEmpty else {
            throw KernelError.invalid("missing_field", "text: required, a non-empty string")
        }
        self.text = text
        data = try body.object("data")
        try body.finish()
    }

    /// What makes two posts "the same message" for idempotency.
    func fingerprint(actor: String) -> String {
        var members: [String: JSONValue] = ["text": .string(text), "actor": .string(actor)]
        if let data { members["data"] = data }
        return SHA256.hash(data: JSONValue.object(members).encoded()).hex
    }
}
