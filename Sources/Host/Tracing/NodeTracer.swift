import Instrumentation
import Tracing

/// The node's tracer (swift-distributed-tracing's `Tracer`), made when
/// `tracing.endpoint` is set.
///
/// A span's parent is the span identity in its context: the request's
/// `traceparent`, or an enclosing span of this node. A trace started here is
/// sampled at `tracing.sample_ratio`; one that arrives keeps the caller's
/// decision (its `01` flag). Unsampled spans still get ids, so what the node
/// propagates stays a valid trace.
final class NodeTracer: Tracer {
    typealias Span = RecordedSpan

    let exporter: OTLPExporter
    let sampleRatio: Double

    init(exporter: OTLPExporter, sampleRatio: Double) {
        self.exporter = exporter
        self.sampleRatio = sampleRatio
    }

    func startSpan<Instant: TracerInstant>(_ operationName: String, context: @autoclosure () -> InstrumentationContext,
                                           ofKind kind: SpanKind, at instant: @autoclosure () -> Instant,
                                           function: String, file fileID: String, line: UInt) -> RecordedSpan {
        var context = context()
        let parent = context.spanIdentity
        let identity = SpanIdentity(traceID: parent?.traceID ?? TraceContext.hex(16), spanID: TraceContext.hex(8),
                                    sampled: parent?.sampled ?? (Double.random(in: 0..<1) < sampleRatio))
        context.spanIdentity = identity
        context.nodeTracer = self
        return RecordedSpan(name: operationName, kind: kind, context: context, identity: identity, parentSpanID: parent?.spanID,
                            startNanos: instant().nanosecondsSinceEpoch, exporter: identity.sampled ? exporter : nil)
    }

    /// Reads a W3C `traceparent`; a malformed one is ignored (a new trace starts).
    func extract<Carrier, Extract>(_ carrier: Carrier, into context: inout InstrumentationContext, using extractor: Extract)
    where Extract: Extractor, Extract.Carrier == Carrier {
        if let header = extractor.extract(key: "traceparent", from: carrier), let identity = SpanIdentity(traceparent: header) {
            context.spanIdentity = identity
        }
    }

    func inject<Carrier, Inject>(_ context: InstrumentationContext, into carrier: inout Carrier, using injector: Inject)
    where Inject: Injector, Inject.Carrier == Carrier {
        if let identity = context.spanIdentity { injector.inject(identity.traceparent, forKey: "traceparent", into: &carrier) }
    }

    func forceFlush() { exporter.flushNow() }
}
