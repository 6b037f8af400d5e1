import Crypto
import Foundation
import NIOConcurrencyHelpers

/// A gesture played back at its original pace, scaled by `speed`, on the
/// kernel's clock (a virtual one in tests): each sample is due at
/// `start + (t_ms - origin) / speed`, where the origin is `from_ms` when
/// given, else the first sample played.
///
/// The samples are read from the gesture's stream a few batches at a time,
/// so a recording of any length replays in bounded memory. Each sample goes
/// out as a StreamEvent v1 of type `gesture.sample` whose `seq` is the
/// sample's ordinal in the gesture (1, 2, ...): a client resumes a replay
/// after the last `seq` it saw.
public final class GestureReplay<C: Clock>: StreamSource, @unchecked Sendable where C.Duration == Duration {
    private struct Pending {
        let ordinal: UInt64
        let sample: JSONValue
        let batch: [String: JSONValue]
        let index: Int
    }

    let gesture: Gesture
    let store: any EventStore
    let options: ReplayOptions
    let clock: C
    private let afterSeq: UInt64
    private let pageBatches = 8
    private let state = NIOLockedValueBox((cancelled: false, lastDelivered: UInt64(0)))
    // Touched only by the one task that calls `next`.
    private var pending: [Pending] = []
    private var pendingHead = 0
    private var nextEventSeq: UInt64 = 0
    private var ordinal: UInt64 = 0
    private var logDone = false
    private var start: C.Instant?
    private var originMs: Double?

    public init(gesture: Gesture, store: any EventStore, options: ReplayOptions, after: UInt64, clock: C) {
        self.gesture = gesture
        self.store = store
        self.options = options
        self.clock = clock
        afterSeq = after
        originMs = options.fromMs
        state.withLockedValue { $0.lastDelivered = after }
    }

    public var completes: Bool { true }
    public var lastDeliveredSeq: UInt64 { state.withLockedValue { $0.lastDelivered } }
    public func cancel() { state.withLockedValue { $0.cancelled = true } }
    private var cancelled: Bool { state.withLockedValue { $0.cancelled } }

    public func next() async throws -> SubscriptionItem? {
        while !cancelled {
            guard let item = try await nextSample() else { return nil }
            let tMs = item.sample.objectValue?["t_ms"].flatMap { if case .number(let n) = $0 { n } else { nil } } ?? 0
            if item.ordinal <= afterSeq { continue }
            if let from = options.fromMs, tMs < from { continue }
            let now = clock.now
            if start == nil { start = now }
            if originMs == nil { originMs = tMs }
            if options.paced, let start, let originMs {
                let offset = max(0, tMs - originMs) / options.speed
                try await clock.sleep(until: start.advanced(by: .nanoseconds(Int64((offset * 1_000_000).rounded()))), tolerance: nil)
                if cancelled { return nil }
            }
            state.withLockedValue { $0.lastDelivered = item.ordinal }
            return .event(event(item))
        }
        return nil
    }

    /// The next stored sample, reading the next few batches when needed.
    private func nextSample() async throws -> Pending? {
        while pendingHead >= pending.count {
            if logDone { return nil }
            pending.removeAll(keepingCapacity: true)
            pendingHead = 0
            let page = try await store.events(stream: gesture.stream, after: nextEventSeq, limit: pageBatches)
            if page.events.isEmpty { logDone = true; return nil }
            for event in page.events {
                nextEventSeq = event.seq
                guard event.type == "gesture.samples" else { continue }
                // A stored batch that does not decode is reported, never skipped: a
                // replay with samples silently missing would look whole.
                guard let object = try? JSONValue.parse(event.json).objectValue,
                      let samples = object["data"]?.objectValue?["samples"]?.arrayValue else {
                    throw StoreCorruption(column: "events.json", why: "gesture batch \(event.seq) of \(gesture.stream.rawValue) does not decode")
                }
                for (index, sample) in samples.enumerated() {
                    ordinal += 1
                    pending.append(Pending(ordinal: ordinal, sample: sample, batch: object, index: index))
                }
            }
        }
        defer { pendingHead += 1 }
        return pending[pendingHead]
    }

    private func event(_ item: Pending) -> StreamEvent {
        let batchID = item.batch["id"]?.stringValue ?? ""
        let id = Self.sampleID(batchID: batchID, index: item.index)
        let json = JSONValue.object([
            "v": .number(1), "id": .string(id), "stream": .string(gesture.stream.rawValue),
            "seq": .number(Double(item.ordinal)), "type": .string("gesture.sample"),
            "ts": item.batch["ts"] ?? .null, "actor": item.batch["actor"] ?? .null, "trace": item.batch["trace"] ?? .null,
            "data": item.sample,
        ]).encoded()
        return StreamEvent(stream: gesture.stream, seq: item.ordinal, id: id, type: "gesture.sample", json: json)
    }

    /// A sample's event id: derived from its batch's id and its place in
    /// the batch, so every replay of it carries the same id.
    static func sampleID(batchID: String, index: Int) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567")
        let digest = Array(SHA256.hash(data: Array("\(batchID).\(index)".utf8)))
        var bits = 0, value = 0
        var out = "ev_"
        for byte in digest where out.count < 29 {
            value = (value << 8) | Int(byte)
            bits += 8
            while bits >= 5, out.count < 29 {
                bits -= 5
                out.append(alphabet[(value >> bits) & 31])
            }
        }
        return out
    }
}
