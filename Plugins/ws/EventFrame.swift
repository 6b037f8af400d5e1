import Foundation

/// How this transport sends one event of a stream:
/// `{"type":"event","stream":...,"event":<StreamEvent v1>}`.
///
/// Live events are framed once, by the host through `frame_event`, and the
/// same bytes go to every socket; events read back from the log during a
/// resume are framed here per subscriber, as they arrive.
enum EventFrame {
    static func bytes(stream: String, event: UnsafeRawBufferPointer) -> [UInt8] {
        var frame = Array(#"{"type":"event","stream":\#(quoted(stream)),"event":"#.utf8)
        frame.reserveCapacity(frame.count + event.count + 1)
        frame.append(contentsOf: event)
        frame.append(UInt8(ascii: "}"))
        return frame
    }
}
