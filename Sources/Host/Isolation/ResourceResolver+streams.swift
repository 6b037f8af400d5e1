extension ResourceResolver {
    /// What a transport may subscribe to, once isolation has resolved it.
    public enum ResolvedStream: Sendable {
        /// The live log of a thread, canvas or gesture the context may read.
        case live(StreamName)
        /// A paced replay of a gesture the context may read.
        case replay(Gesture, ReplayOptions)
    }

    /// Resolves a transport's stream name for `context`: `chat:<thread_id>`,
    /// `canvas:<canvas_id>`, `gesture:<gesture_id>` (live), or
    /// `replay:<gesture_id>[?speed=&from_ms=&pace=]`. Isolation is decided
    /// here, as for REST: another tenant's id and a missing one are one 404.
    public func resolveStream(_ name: String, for context: RequestContext) async throws -> ResolvedStream {
        let parts = name.split(separator: ":", maxSplits: 1).map(String.init)
        let usage = "\"\(name.prefix(80))\" is not a stream name (chat:<thread_id>, canvas:<canvas_id>, gesture:<gesture_id>, replay:<gesture_id>)"
        guard parts.count == 2 else { throw KernelError.invalid("invalid_stream", usage) }
        switch parts[0] {
        case "chat", "canvas":
            return .live(try await resolve(parts[0] == "chat" ? .thread : .canvas, id: parts[1], for: context, access: .read).stream)
        case "gesture":
            return .live(try await resolveGesture(parts[1], canvasID: nil, for: context, access: .read).stream)
        case "replay":
            let id = parts[1].split(separator: "?", maxSplits: 1).map(String.init)
            let gesture = try await resolveGesture(id[0], canvasID: nil, for: context, access: .read)
            return .replay(gesture, try ReplayOptions(query: id.count > 1 ? id[1] : ""))
        default:
            throw KernelError.invalid("invalid_stream", usage)
        }
    }
}
