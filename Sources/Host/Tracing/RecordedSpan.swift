import Instrumentation
import NIOConcurrencyHelpers
import Tracing

/// A span of this node (swift-distributed-tracing's `Span`): it gathers its
/// name, attributes, events and status until it ends, then goes to the
/// exporter if its trace is sampled. Safe to touch from any task.
final class RecordedSpan: Tracing.Span {
    /// What a span is once it has ended: what the exporter sends.
    struct Finished: Sendable {
        let identity: SpanIdentity
        let parentSpanID: String?
        let name: String
        let kind: SpanKind
        let startNanos: UInt64
        let endNanos: UInt64
        let attributes: SpanAttributes
        let events: [SpanEvent]
        let links: [SpanIdentity]
        let status: SpanStatus?
    }

    private struct State {
        var name: String
        var attributes = SpanAttributes()
        var events: [SpanEvent] = []
        var links: [SpanIdentity] = []
        var status: SpanStatus?
        var ended = false
    }

    let context: InstrumentationContext
    let identity: SpanIdentity
    let parentSpanID: String?
    let kind: SpanKind
    let startNanos: UInt64
    /// Nil when the trace is not sampled: the span keeps its ids (they are
    /// propagated) but records nothing.
    private let exporter: OTLPExporter?
    private let state: NIOLockedValueBox<State>

    init(name: String, kind: SpanKind, context: InstrumentationContext, identity: SpanIdentity, parentSpanID: String?,
         startNanos: UInt64, exporter: OTLPExporter?) {
        self.context = context
        self.identity = identity
        self.parentSpanID = parentSpanID
        self.kind = kind
        self.startNanos = startNanos
        self.exporter = exporter
        state = NIOLockedValueBox(State(name: name))
    }

    var operationName: String {
        get { state.withLockedValue { $0.name } }
        set { state.withLockedValue { $0.name = newValue } }
    }

    var attributes: SpanAttributes {
        get { state.withLockedValue { $0.attributes } }
        set { state.withLockedValue { $0.attributes = newValue } }
    }

    var isRecording: Bool { exporter != nil && !state.withLockedValue { $0.ended } }

    func setStatus(_ status: SpanStatus) { state.withLockedValue { $0.status = status } }

    func addEvent(_ event: SpanEvent) { state.withLockedValue { $0.events.append(event) } }

    /// An error becomes an `exception` event (OpenTelemetry's convention).
    /// Only its type and the kernel's stable code go out: messages may name
    /// what the caller sent.
    func recordError<Instant: TracerInstant>(_ error: Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {
        var details = attributes
        details["exception.type"] = "\(type(of: error))"
        if let kernel = error as? KernelError { details["exception.message"] = kernel.code }
        addEvent(SpanEvent(name: "exception", at: instant(), attributes: details))
    }

    func addLink(_ link: SpanLink) {
        guard let linked = link.context.spanIdentity else { return }
        state.withLockedValue { $0.links.append(linked) }
    }

    func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        let endNanos = instant().nanosecondsSinceEpoch
        guard let finished = state.withLockedValue({ state -> Finished? in
            guard !state.ended else { return nil }
            state.ended = true
            return Finished(identity: identity, parentSpanID: parentSpanID, name: state.name, kind: kind, startNanos: startNanos,
                            endNanos: endNanos, attributes: state.attributes, events: state.events, links: state.links,
                            status: state.status)
        }) else { return }
        exporter?.enqueue(finished)
    }
}
