import Foundation

/// Encodes each event once for this transport: the host hands every
/// subscriber of an event the same bytes in turn, so the last frame built
/// serves them all, and every socket gets the same bytes.
final class FrameCache: @unchecked Sendable {
    private let lock = NSLock()
    private var last: (stream: String, seq: UInt64, frame: [UInt8])?

    /// `{"type":"event","stream":...,"event":<StreamEvent v1>}`.
    func frame(stream: String, seq: UInt64, event: UnsafeRawBufferPointer) -> [UInt8] {
        if let cached = lock.withLock({ last }), cached.seq == seq, cached.stream == stream { return cached.frame }
        var frame = Array(#"{"type":"event","stream":\#(quoted(stream)),"event":"#.utf8)
        frame.reserveCapacity(frame.count + event.count + 1)
        frame.append(contentsOf: event)
        frame.append(UInt8(ascii: "}"))
        lock.withLock { last = (stream, seq, frame) }
        return frame
    }
}
