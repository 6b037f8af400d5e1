import Foundation

/// A gesture: who drew it on which canvas, over which revision, and the
/// running state that validates each new batch (per pointer: its last time
/// offset and whether it is down).
public struct Gesture: Sendable, Codable, Equatable {
    public enum State: String, Sendable, Codable { case open, ended }

    struct Pointer: Sendable, Codable, Equatable {
        var lastMs: Double
        var down: Bool
    }

    public let id: String
    public let canvasID: String
    public let tenant: String
    public let env: String
    public let createdBy: String
    public let createdAtMs: Int64
    /// The canvas revision the gesture was drawn over.
    public let baseRev: Int64
    public internal(set) var state: State
    public internal(set) var sampleCount: Int
    public internal(set) var durationMs: Double
    var pointers: [String: Pointer]

    public var stream: StreamName { StreamName("gesture:\(id)") }
    public var pointerCount: Int { pointers.count }

    init(id: String, canvas: Resource, createdBy: String, baseRev: Int64) {
        self.id = id
        canvasID = canvas.id
        tenant = canvas.tenant
        env = canvas.env
        self.createdBy = createdBy
        createdAtMs = Int64(Date.nowToTheMillisecond.timeIntervalSince1970 * 1000)
        self.baseRev = baseRev
        state = .open
        sampleCount = 0
        durationMs = 0
        pointers = [:]
    }

    /// Takes a batch if it continues the gesture: open, within the sample
    /// limit, each pointer's time never going back, and each pointer's
    /// phases in order (down, move..., up or cancel). All or nothing.
    mutating func accept(_ batch: SampleBatch, limits: GestureLimits) throws {
        guard state == .open else {
            throw KernelError(.conflict, code: "gesture_ended", message: "gesture \(id) has ended; start a new one")
        }
        guard sampleCount + batch.samples.count <= limits.maxSamples else {
            throw KernelError(.tooLarge, code: "gesture_too_large",
                           message: "a gesture holds at most \(limits.maxSamples) samples (limits.max_gesture_samples)")
        }
        var pointers = self.pointers
        for (index, sample) in batch.samples.enumerated() {
            let key = String(sample.pointer)
            if pointers[key] == nil, pointers.count >= limits.maxPointers {
                throw KernelError(.tooLarge, code: "too_many_pointers",
                                  message: "samples[\(index)]: pointer \(sample.pointer) would be this gesture's pointer \(pointers.count + 1); "
                                      + "a gesture has at most \(limits.maxPointers) (limits.max_gesture_pointers): start a new gesture",
                                  details: ["index": .number(Double(index))])
            }
            var pointer = pointers[key] ?? Pointer(lastMs: -1, down: false)
            guard sample.tMs >= pointer.lastMs else {
                throw GestureSample.invalid(index, "t_ms", "\(sample.tMs) goes back in time for pointer \(sample.pointer) (last \(pointer.lastMs))")
            }
            switch (sample.phase, pointer.down) {
            case (.down, false): pointer.down = true
            case (.down, true):
                throw GestureSample.invalid(index, "phase", "down for pointer \(sample.pointer), which is already down")
            case (.move, true): break
            case (.up, true), (.cancel, true): pointer.down = false
            case (_, false):
                throw GestureSample.invalid(index, "phase", "\(sample.phase.rawValue) for pointer \(sample.pointer) before its down")
            }
            pointer.lastMs = sample.tMs
            pointers[key] = pointer
        }
        self.pointers = pointers
        sampleCount += batch.samples.count
        durationMs = max(durationMs, batch.samples.map(\.tMs).max() ?? 0)
    }

    /// The REST shape.
    var json: JSONValue {
        .object([
            "gesture_id": .string(id), "canvas_id": .string(canvasID), "stream": .string(stream.rawValue),
            "state": .string(state.rawValue), "base_rev": .number(Double(baseRev)), "created_by": .string(createdBy),
            "created_at": .string(EventDraft.format(Date(timeIntervalSince1970: Double(createdAtMs) / 1000))),
            "sample_count": .number(Double(sampleCount)), "pointer_count": .number(Double(pointerCount)),
            "duration_ms": .number(durationMs),
        ])
    }
}
