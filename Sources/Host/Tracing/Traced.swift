import Instrumentation
import NIOPosix
import Tracing

/// Spans for the kernel's steps (auth, the isolation check, the commit, a
/// storage call), made under the request's span when the node traces and
/// skipped at no cost when it does not.
enum Traced {
    /// Runs `body` inside a span named `name`, the child of the current one;
    /// `body` gets the span (nil when not tracing) to add what it learns.
    /// A thrown error marks the span as failed and is rethrown unchanged.
    static func span<T>(_ name: String, _ attributes: [String: String] = [:], kind: SpanKind = .internal,
                        _ body: (RecordedSpan?) async throws -> T) async rethrows -> T {
        guard let current = InstrumentationContext.current, let tracer = current.nodeTracer else { return try await body(nil) }
        let span = tracer.startSpan(name, context: current, ofKind: kind)
        for (key, value) in attributes { span.attributes[key] = value }
        defer { span.end() }
        do {
            return try await InstrumentationContext.$current.withValue(span.context) { try await body(span) }
        } catch {
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error, message: (error as? KernelError)?.code))
            throw error
        }
    }

    // MARK: Plugin calls

    /// The context of the span a plugin entry runs under, for the plugin's
    /// `http_fetch` calls. Plugins call back on the thread the host called
    /// them on (or on threads of their own, where nothing is known), so it is
    /// kept per thread around the entry call: a task local would not reach a
    /// thread-pool thread.
    private static let pluginCallContext = ThreadSpecificVariable<Box>()

    private final class Box: Sendable {
        let context: InstrumentationContext
        init(_ context: InstrumentationContext) { self.context = context }
    }

    /// Runs a synchronous plugin entry under the current span, if any.
    static func pluginCall<T>(_ context: InstrumentationContext?, _ entry: () throws -> T) rethrows -> T {
        guard let context, context.nodeTracer != nil else { return try entry() }
        let outer = pluginCallContext.currentValue
        pluginCallContext.currentValue = Box(context)
        defer { pluginCallContext.currentValue = outer }
        return try entry()
    }

    /// A client span for a plugin's outbound request, made when the plugin
    /// calls `http_fetch` from inside a traced entry; its `traceparent` goes
    /// out with the request. A plugin that works in a Swift task it started
    /// from the entry call inherits the host's task locals (one Swift
    /// runtime per process); one that blocks the calling thread is found by
    /// the thread.
    static func outboundSpan(method: String, host: String) -> RecordedSpan? {
        guard let context = InstrumentationContext.current ?? pluginCallContext.currentValue?.context,
              let tracer = context.nodeTracer else { return nil }
        let span = tracer.startSpan("http_fetch \(method)", context: context, ofKind: .client)
        span.attributes["http.request.method"] = method
        span.attributes["server.address"] = host
        return span
    }
}
