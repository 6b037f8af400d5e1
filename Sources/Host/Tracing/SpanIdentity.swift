import Instrumentation

/// One span's place in a W3C trace: the three fields a `traceparent`
/// carries (the version is always `00`).
struct SpanIdentity: Sendable, Hashable {
    /// 32 lowercase hex digits, not all zero.
    let traceID: String
    /// 16 lowercase hex digits, not all zero.
    let spanID: String
    /// The `01` flag: whether the trace is recorded and exported.
    let sampled: Bool

    init(traceID: String, spanID: String, sampled: Bool) {
        self.traceID = traceID
        self.spanID = spanID
        self.sampled = sampled
    }

    /// The identity a well-formed `traceparent` names, or nil.
    init?(traceparent: String) {
        guard TraceContext.isWellFormed(traceparent: traceparent) else { return nil }
        let bytes = Array(traceparent.utf8)
        traceID = String(decoding: bytes[3..<35], as: UTF8.self)
        spanID = String(decoding: bytes[36..<52], as: UTF8.self)
        // The flags are hex; bit 0 is "sampled", the other bits are not ours.
        let flags = UInt8(String(decoding: bytes[53..<55], as: UTF8.self), radix: 16) ?? 0
        sampled = flags & 1 == 1
    }

    var traceparent: String { "00-\(traceID)-\(spanID)-\(sampled ? "01" : "00")" }
}

/// Where a span's identity travels in swift-distributed-tracing's context.
enum SpanIdentityKey: InstrumentationContextKey {
    typealias Value = SpanIdentity
    static var nameOverride: String? { "traceparent" }
}

/// The node's tracer, carried in the context beside the span so that the
/// kernel's steps (`Traced.span`) find it without being handed it.
enum NodeTracerKey: InstrumentationContextKey {
    typealias Value = NodeTracer
}

extension InstrumentationContext {
    var spanIdentity: SpanIdentity? {
        get { self[SpanIdentityKey.self] }
        set { self[SpanIdentityKey.self] = newValue }
    }

    var nodeTracer: NodeTracer? {
        get { self[NodeTracerKey.self] }
        set { self[NodeTracerKey.self] = newValue }
    }
}
