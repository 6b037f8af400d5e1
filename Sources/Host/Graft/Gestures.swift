import Foundation

/// Graft: gestures captured on a canvas, stored as their own stream
/// (`gesture:<id>`, one `gesture.samples` event per batch) and announced
/// live on the canvas stream, so watchers see the ink as it is drawn.
/// A gesture belongs to its canvas's tenant and env.
public struct Gestures: Sendable {
    let store: any EventStore
    let resolver: ResourceResolver
    let limits: GestureLimits

    static let idPrefix = "gs_"

    /// Starts a gesture over revision `base_rev` (default: the canvas head).
    public func start(canvasID: String, body: JSONValue, context: RequestContext) async throws -> Gesture {
        let canvas = try await resolver.resolve(.canvas, id: canvasID, for: context, access: .write)
        guard let members = body.objectValue else { throw KernelError.invalid("invalid_body", "the body is a JSON object") }
        if let unknown = members.keys.sorted().first(where: { $0 != "base_rev" }) {
            throw KernelError.invalid("unknown_field", "\(unknown): not a field of a gesture (base_rev)")
        }
        let head = try await store.head(canvas: canvas.id).rev
        var baseRev = head
        if let value = members["base_rev"] {
            guard case .number(let number) = value, number == number.rounded(), number >= 0, number < 9e15 else {
                throw KernelError.invalid("invalid_field", "base_rev: a revision number (an integer >= 0)")
            }
            baseRev = Int64(number)
            guard baseRev <= head else {
                throw KernelError(.unprocessable, code: "base_rev_ahead", message: "base_rev \(baseRev) is ahead of head_rev \(head)",
                               details: ["head_rev": .number(Double(head))])
            }
        }
        let gesture = Gesture(id: Identifier.make(prefix: Self.idPrefix), canvas: canvas, createdBy: context.userID, baseRev: baseRev)
        _ = try await store.createGesture(gesture, announce: EventDraft(
            stream: canvas.stream, type: "gesture.started", actor: context.userID, traceparent: context.traceparent,
            data: .object(["gesture_id": .string(gesture.id), "base_rev": .number(Double(baseRev))])))
        return gesture
    }

    /// Appends a batch, durably, to the gesture's stream and, live, to the canvas's.
    public func append(gestureID: String, canvasID: String?, body: JSONValue, context: RequestContext) async throws -> (Gesture, StreamEvent) {
        let gesture = try await resolver.resolveGesture(gestureID, canvasID: canvasID, for: context, access: .write)
        let batch = try SampleBatch(json: body, limits: limits)
        let limits = self.limits
        let (actor, trace) = (context.userID, context.traceparent)
        let (updated, events) = try await store.updateGesture(id: gesture.id) { gesture in
            let first = gesture.sampleCount + 1
            try gesture.accept(batch, limits: limits)
            let samples = JSONValue.array(batch.samples.map(\.json))
            return [
                EventDraft(stream: gesture.stream, type: "gesture.samples", actor: actor, traceparent: trace,
                           data: .object(["samples": samples, "first_sample": .number(Double(first))])),
                EventDraft(stream: .canvas(gesture.canvasID), type: "gesture.samples", actor: actor, traceparent: trace,
                           data: .object(["gesture_id": .string(gesture.id), "samples": samples, "first_sample": .number(Double(first))])),
            ]
        }
        return (updated, events[0])
    }

    /// Ends a gesture: no more samples; announced on both streams.
    public func end(gestureID: String, canvasID: String?, context: RequestContext) async throws -> Gesture {
        let gesture = try await resolver.resolveGesture(gestureID, canvasID: canvasID, for: context, access: .write)
        let (actor, trace) = (context.userID, context.traceparent)
        return try await store.updateGesture(id: gesture.id) { gesture in
            guard gesture.state == .open else {
                throw KernelError(.conflict, code: "gesture_ended", message: "gesture \(gesture.id) has already ended")
            }
            gesture.state = .ended
            let data = JSONValue.object(["gesture_id": .string(gesture.id), "sample_count": .number(Double(gesture.sampleCount)),
                                         "duration_ms": .number(gesture.durationMs)])
            return [EventDraft(stream: gesture.stream, type: "gesture.ended", actor: actor, traceparent: trace, data: data),
                    EventDraft(stream: .canvas(gesture.canvasID), type: "gesture.ended", actor: actor, traceparent: trace, data: data)]
        }.0
    }

    /// Up to `limit` of the canvas's gestures, oldest first, after the gesture `after`.
    /// - Throws: 400 `invalid_after` when `after` names no gesture of this canvas.
    public func list(canvasID: String, after: String?, limit: Int, context: RequestContext) async throws -> [Gesture] {
        let canvas = try await resolver.resolve(.canvas, id: canvasID, for: context, access: .read)
        var cursor: Gesture?
        if let after {
            // Another canvas's gesture is refused as a missing one: nothing is told about it.
            guard let gesture = try await store.gesture(id: after), gesture.canvasID == canvas.id else {
                throw KernelError.invalid("invalid_after", "after must be the gesture_id of a gesture of this canvas (a previous page's next_after)")
            }
            cursor = gesture
        }
        return try await store.gestures(canvas: canvas.id, after: cursor, limit: limit)
    }
}
