import Foundation
import Instrumentation
@testable import NorthstarHost
import Testing
import Tracing

/// Spans without the network: identities from `traceparent`, the sampling
/// rules, parent links, and the OTLP JSON a batch becomes.
@Suite struct TracingTests {
    /// An exporter whose queue is never sent (the interval is an hour).
    private func tracer(sampleRatio: Double = 1, maxQueue: Int = 100) -> NodeTracer {
        NodeTracer(exporter: OTLPExporter(endpoint: "http://127.0.0.1:9", serviceName: "test", maxQueue: maxQueue,
                                          flushInterval: .seconds(3600), metrics: nil),
                   sampleRatio: sampleRatio)
    }

    private func context(_ traceparent: String?) -> InstrumentationContext {
        var context = InstrumentationContext.topLevel
        context.spanIdentity = traceparent.flatMap(SpanIdentity.init(traceparent:))
        return context
    }

    @Test("a traceparent's ids and sampled flag are read, and written back the same")
    func identity() throws {
        let sampled = try #require(SpanIdentity(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
        #expect(sampled.traceID == "4bf92f3577b34da6a3ce929d0e0e4736" && sampled.spanID == "00f067aa0ba902b7" && sampled.sampled)
        #expect(sampled.traceparent == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        // Bit 0 is "sampled"; other flag bits are not ours and are not kept.
        #expect(SpanIdentity(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03")?.sampled == true)
        #expect(SpanIdentity(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02")?.sampled == false)
        #expect(SpanIdentity(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01") == nil)
        #expect(SpanIdentity(traceparent: "nonsense") == nil)
    }

    @Test("a span continues its parent's trace and decision; a root is sampled at the ratio")
    func sampling() {
        let never = tracer(sampleRatio: 0)
        let root = never.startSpan("root", context: context(nil), ofKind: .server)
        #expect(!root.identity.sampled && !root.isRecording && root.parentSpanID == nil)
        let continued = never.startSpan("continued", context: context("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
                                        ofKind: .server)
        #expect(continued.identity.sampled && continued.isRecording)
        #expect(continued.identity.traceID == "4bf92f3577b34da6a3ce929d0e0e4736" && continued.parentSpanID == "00f067aa0ba902b7")
        let child = never.startSpan("child", context: continued.context, ofKind: .internal)
        #expect(child.parentSpanID == continued.identity.spanID && child.identity.traceID == continued.identity.traceID)
        #expect(child.context.nodeTracer === never)

        let always = tracer(sampleRatio: 1)
        let unsampledCaller = always.startSpan("x", context: context("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
                                               ofKind: .server)
        #expect(!unsampledCaller.identity.sampled)  // the caller decided
        #expect(always.startSpan("y", context: context(nil), ofKind: .server).identity.sampled)
    }

    @Test("ended spans queue once, up to the bound; unsampled ones never")
    func queueing() async {
        let tracer = tracer(maxQueue: 2)
        let span = tracer.startSpan("a", context: context(nil), ofKind: .internal)
        span.end()
        span.end()  // a second end is ignored
        tracer.startSpan("b", context: context("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"), ofKind: .internal).end()
        tracer.startSpan("c", context: context(nil), ofKind: .internal).end()
        tracer.startSpan("d", context: context(nil), ofKind: .internal).end()  // over the bound: dropped
        #expect(tracer.exporter.waitingNames == ["a", "c"])
    }

    @Test("a batch is OTLP JSON: hex ids, kinds and status as numbers, 64-bit integers as strings")
    func encoding() throws {
        let tracer = tracer()
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let span = tracer.startSpan("GET /v1/threads/{thread_id}", context: context(parent), ofKind: .server,
                                    at: DefaultTracerClock.now)
        span.attributes["http.response.status_code"] = Int64(503)
        span.attributes["http.route"] = "/v1/threads/{thread_id}"
        span.attributes["ratio"] = 0.5
        span.attributes["flag"] = true
        span.attributes["list"] = ["a", "b"]
        span.recordError(KernelError(.unavailable, code: "store_unavailable", message: "secret path /var/x"))
        span.setStatus(SpanStatus(code: .error, message: "store_unavailable"))
        span.end()
        let batch = tracer.exporter.waiting
        let body = try JSONValue.parse(Data(OTLPEncoding.body(batch, serviceName: "svc")))
        guard case .object(let root) = body, case .array(let resources) = root["resourceSpans"],
              case .object(let resource) = resources.first, case .array(let scopes) = resource["scopeSpans"],
              case .object(let scope) = scopes.first, case .array(let spans) = scope["spans"],
              case .object(let encoded) = spans.first else {
            Issue.record("not an ExportTraceServiceRequest: \(body)")
            return
        }
        #expect(resource["resource"] == .object(["attributes": .array([.object(["key": .string("service.name"),
                                                                                "value": .object(["stringValue": .string("svc")])])])]))
        #expect(encoded["traceId"] == .string("4bf92f3577b34da6a3ce929d0e0e4736"))
        #expect(encoded["parentSpanId"] == .string("00f067aa0ba902b7"))
        #expect(encoded["spanId"] == .string(span.identity.spanID))
        #expect(encoded["kind"] == .number(2))
        #expect(encoded["status"] == .object(["code": .number(2), "message": .string("store_unavailable")]))
        guard case .string(let start) = encoded["startTimeUnixNano"], case .string(let end) = encoded["endTimeUnixNano"],
              let startNanos = UInt64(start), let endNanos = UInt64(end) else {
            Issue.record("times are not decimal strings")
            return
        }
        #expect(endNanos >= startNanos && startNanos > 1_700_000_000_000_000_000)
        guard case .array(let attributes) = encoded["attributes"] else {
            Issue.record("no attributes")
            return
        }
        let byKey = Dictionary(uniqueKeysWithValues: attributes.compactMap { item -> (String, JSONValue)? in
            guard case .object(let pair) = item, case .string(let key) = pair["key"], let value = pair["value"] else { return nil }
            return (key, value)
        })
        #expect(byKey["http.response.status_code"] == .object(["intValue": .string("503")]))
        #expect(byKey["http.route"] == .object(["stringValue": .string("/v1/threads/{thread_id}")]))
        #expect(byKey["ratio"] == .object(["doubleValue": .number(0.5)]))
        #expect(byKey["flag"] == .object(["boolValue": .bool(true)]))
        #expect(byKey["list"] == .object(["arrayValue": .object(["values": .array([.object(["stringValue": .string("a")]),
                                                                                  .object(["stringValue": .string("b")])])])]))
        // The error is an event with its stable code, never its message.
        let text = String(decoding: OTLPEncoding.body(batch, serviceName: "svc"), as: UTF8.self)
        #expect(text.contains("\"exception\"") && text.contains("store_unavailable") && !text.contains("secret path"))
    }
}

extension OTLPExporter {
    var waitingNames: [String] { waiting.map(\.name) }
}
