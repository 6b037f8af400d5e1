import Foundation

/// One pointer sample of a gesture, as clients send it and replays give it:
///
///     {"t_ms": 12.5, "x": 140.0, "y": 88.25, "pointer": 1, "phase": "move",
///      "pressure": 0.6, "tilt_x": 10, "tilt_y": -4, "button": 0}
///
/// `t_ms` is the offset from the gesture's start; `pressure`, `tilt_x`,
/// `tilt_y` and `button` are optional.
public struct GestureSample: Sendable, Equatable {
    public enum Phase: String, Sendable { case down, move, up, cancel }

    public var tMs: Double
    public var x: Double
    public var y: Double
    public var pointer: Int64
    public var phase: Phase
    public var pressure: Double?
    public var tiltX: Double?
    public var tiltY: Double?
    public var button: Int64?

    static let fields: Set = ["t_ms", "x", "y", "pointer", "phase", "pressure", "tilt_x", "tilt_y", "button"]

    /// Reads sample `index` of a batch; every refusal names the sample and field.
    init(json: JSONValue, index: Int, maxDurationMs: Double) throws {
        guard let object = json.objectValue else { throw Self.invalid(index, "", "a sample is an object") }
        if let unknown = object.keys.sorted().first(where: { !Self.fields.contains($0) }) {
            throw Self.invalid(index, unknown, "unknown field (known: \(Self.fields.sorted().joined(separator: ", ")))")
        }
        func number(_ name: String, required: Bool = true) throws -> Double? {
            guard let value = object[name] else {
                if required { throw Self.invalid(index, name, "required, a number") }
                return nil
            }
            guard case .number(let number) = value else { throw Self.invalid(index, name, "must be a number") }
            guard number.isFinite else { throw Self.invalid(index, name, "must be finite") }
            return number
        }
        tMs = try number("t_ms")!
        guard tMs >= 0, tMs <= maxDurationMs else {
            throw Self.invalid(index, "t_ms", "must be from 0 to \(Int(maxDurationMs)) (limits.max_gesture_duration_ms)")
        }
        x = try number("x")!
        y = try number("y")!
        let pointerNumber = try number("pointer")!
        guard pointerNumber == pointerNumber.rounded(), (0...Double(Int32.max)).contains(pointerNumber) else {
            throw Self.invalid(index, "pointer", "an integer from 0 to 2147483647")
        }
        pointer = Int64(pointerNumber)
        guard let phaseText = object["phase"]?.stringValue, let phase = Phase(rawValue: phaseText) else {
            throw Self.invalid(index, "phase", "one of down, move, up, cancel")
        }
        self.phase = phase
        pressure = try number("pressure", required: false)
        if let pressure, !(0...1).contains(pressure) { throw Self.invalid(index, "pressure", "from 0 to 1") }
        tiltX = try number("tilt_x", required: false)
        tiltY = try number("tilt_y", required: false)
        for (name, tilt) in [("tilt_x", tiltX), ("tilt_y", tiltY)] {
            if let tilt, !(-90...90).contains(tilt) { throw Self.invalid(index, name, "from -90 to 90") }
        }
        if let buttonNumber = try number("button", required: false) {
            guard buttonNumber == buttonNumber.rounded(), (0...31).contains(buttonNumber) else {
                throw Self.invalid(index, "button", "an integer from 0 to 31")
            }
            button = Int64(buttonNumber)
        }
    }

    var json: JSONValue {
        var members: [String: JSONValue] = [
            "t_ms": .number(tMs), "x": .number(x), "y": .number(y), "pointer": .number(Double(pointer)), "phase": .string(phase.rawValue),
        ]
        if let pressure { members["pressure"] = .number(pressure) }
        if let tiltX { members["tilt_x"] = .number(tiltX) }
        if let tiltY { members["tilt_y"] = .number(tiltY) }
        if let button { members["button"] = .number(Double(button)) }
        return .object(members)
    }

    static func invalid(_ index: Int, _ field: String, _ why: String) -> KernelError {
        KernelError(.invalid, code: "invalid_sample", message: "samples[\(index)]\(field.isEmpty ? "" : ".\(field)"): \(why)",
                 details: ["sample_index": .number(Double(index))])
    }
}

/// A batch of samples from a request body `{"samples": [...]}`.
public struct SampleBatch: Sendable {
    public let samples: [GestureSample]

    public init(json: JSONValue, limits: GestureLimits) throws {
        guard let object = json.objectValue, let array = object["samples"]?.arrayValue else {
            throw KernelError.invalid("missing_field", "samples: required, an array of samples")
        }
        if let unknown = object.keys.sorted().first(where: { $0 != "samples" }) {
            throw KernelError.invalid("unknown_field", "\(unknown): not a field of a sample batch (samples)")
        }
        guard !array.isEmpty else { throw KernelError.invalid("invalid_field", "samples: at least one sample") }
        guard array.count <= limits.maxBatchSamples else {
            throw KernelError(.tooLarge, code: "batch_too_large",
                           message: "\(array.count) samples; a batch holds at most \(limits.maxBatchSamples) (limits.max_gesture_batch_samples)")
        }
        samples = try array.enumerated().map { try GestureSample(json: $1, index: $0, maxDurationMs: limits.maxDurationMs) }
    }
}
