import NIOConcurrencyHelpers
import NIOCore

/// One committed event on its way to live subscribers: framed once per
/// transport (by the transport's `frame_event`) and once per wire framing;
/// the same buffer, shared by reference count, goes to every connection
/// that streams it.
final class LiveEvent: Sendable {
    let event: StreamEvent
    /// What the event counts against a connection's limit while it waits in its queue.
    let size: Int
    /// When it was handed to the fan-out, right after its commit: where the
    /// delivery latency is measured from.
    let committedAt = ContinuousClock.now

    private struct Key: Hashable {
        let transport: ObjectIdentifier
        let framing: StreamFraming?
    }

    /// nil for a transport that could not frame it.
    private let frames = NIOLockedValueBox<[Key: ByteBuffer?]>([:])

    init(_ event: StreamEvent) {
        self.event = event
        size = event.json.count + 64
    }

    var seq: UInt64 { event.seq }

    /// The transport's bytes for the event, made once; nil when it refused it.
    func payload(for transport: PluginInstance) -> ByteBuffer? {
        let key = Key(transport: ObjectIdentifier(transport), framing: nil)
        if let made = frames.withLockedValue({ $0[key] }) { return made }
        let made = transport.frameEvent(event)
        frames.withLockedValue { $0[key] = .some(made) }
        return made
    }

    /// The event as `transport` sends it, framed for the wire. Call after
    /// `payload(for:)` gave bytes.
    func framed(by transport: PluginInstance, as framing: StreamFraming) -> ByteBuffer {
        let key = Key(transport: ObjectIdentifier(transport), framing: framing)
        if let made = frames.withLockedValue({ $0[key] }), let made { return made }
        let made = framing.wrap(payload(for: transport) ?? ByteBuffer())
        frames.withLockedValue { $0[key] = .some(made) }
        return made
    }
}

/// One event's frames while a loop writes it to its subscribers: each
/// transport and framing is looked up once per batch, not once per
/// subscriber (no lock, no hashing per write).
struct BatchFrames {
    let event: LiveEvent
    private var made: [(transport: ObjectIdentifier, framing: StreamFraming, bytes: ByteBuffer?)] = []

    init(_ event: LiveEvent) {
        self.event = event
    }

    /// The event as `transport` sends it, framed as `framing` (`.plain`:
    /// the transport's bytes alone); nil when the transport refused it.
    mutating func bytes(for transport: PluginInstance, framing: StreamFraming) -> ByteBuffer? {
        let id = ObjectIdentifier(transport)
        for entry in made where entry.transport == id && entry.framing == framing { return entry.bytes }
        let bytes = event.payload(for: transport).map { _ in event.framed(by: transport, as: framing) }
        made.append((id, framing, bytes))
        return bytes
    }
}
