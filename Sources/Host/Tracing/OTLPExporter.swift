import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle
import Tracing

/// Sends finished spans to an OpenTelemetry collector over OTLP/HTTP with
/// the JSON encoding: `POST <endpoint>/v1/traces`.
///
/// A span never waits for the network: it joins a bounded queue, and the
/// queue leaves in batches every `flushInterval`, or sooner once a batch is
/// full. Past `maxQueue` waiting spans the newest are dropped; a batch the
/// collector refuses or cannot take is dropped too. Both are counted
/// (`northstar_trace_spans_total{result}`) and logged at most once a minute,
/// so a collector that is down costs the node nothing but its traces.
final class OTLPExporter: Sendable {
    static let batchSize = 512

    let url: String
    let serviceName: String
    let maxQueue: Int
    let flushInterval: Duration
    private let metrics: Metrics?
    private let queue = NIOLockedValueBox<[RecordedSpan.Finished]>([])
    private let ticks: AsyncStream<Void>
    private let tick: AsyncStream<Void>.Continuation
    private let lastComplaint = NIOLockedValueBox<ContinuousClock.Instant?>(nil)
    private let logger = Logger(label: "northstar.tracing")

    init(endpoint: String, serviceName: String, maxQueue: Int, flushInterval: Duration, metrics: Metrics?) {
        url = (endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint) + "/v1/traces"
        self.serviceName = serviceName
        self.maxQueue = maxQueue
        self.flushInterval = flushInterval
        self.metrics = metrics
        (ticks, tick) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues a finished span; drops it when the queue is full.
    func enqueue(_ span: RecordedSpan.Finished) {
        let waiting = queue.withLockedValue { queue -> Int? in
            guard queue.count < maxQueue else { return nil }
            queue.append(span)
            return queue.count
        }
        guard let waiting else {
            metrics?.increment("northstar_trace_spans_total", [("result", "dropped_queue_full")])
            complain("the trace queue is full (\(maxQueue) spans): spans are dropped until the collector keeps up")
            return
        }
        if waiting == Self.batchSize { tick.yield() }
    }

    /// The spans waiting to be sent now.
    var waiting: [RecordedSpan.Finished] { queue.withLockedValue { $0 } }

    /// Sends what waits now, without waiting for the next interval.
    func flushNow() { tick.yield() }

    /// Sends batches until cancelled, then what is left (the node's drain).
    func run() async {
        let interval = flushInterval
        let tick = self.tick
        let timer = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                tick.yield()
            }
        }
        defer { timer.cancel() }
        await withTaskCancellationHandler {
            for await _ in ticks { await sendWaiting() }
        } onCancel: {
            tick.finish()
        }
        // In a task of its own: this one is cancelled, which would cancel the POST.
        await Task { await self.sendWaiting() }.value
    }

    /// Sends every waiting span, a batch at a time.
    func sendWaiting() async {
        while true {
            let batch = queue.withLockedValue { queue -> [RecordedSpan.Finished] in
                let taken = Array(queue.prefix(Self.batchSize))
                queue.removeFirst(taken.count)
                return taken
            }
            guard !batch.isEmpty else { return }
            await send(batch)
        }
    }

    private func send(_ batch: [RecordedSpan.Finished]) async {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: OTLPEncoding.body(batch, serviceName: serviceName)))
        let count = batch.count
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
            _ = try? await response.body.collect(upTo: 1 << 16)
            guard (200..<300).contains(response.status.code) else {
                metrics?.increment("northstar_trace_spans_total", [("result", "dropped_refused")], by: count)
                complain("the collector at \(url) answered \(response.status.code); \(batch.count) spans dropped")
                return
            }
            metrics?.increment("northstar_trace_spans_total", [("result", "exported")], by: count)
        } catch {
            metrics?.increment("northstar_trace_spans_total", [("result", "dropped_unreachable")], by: count)
            complain("the collector at \(url) cannot be reached (\(error)); \(batch.count) spans dropped")
        }
    }

    /// Logs a warning, at most once a minute.
    private func complain(_ message: String) {
        let now = ContinuousClock.now
        let due = lastComplaint.withLockedValue { last -> Bool in
            guard last.map({ now - $0 >= .seconds(60) }) ?? true else { return false }
            last = now
            return true
        }
        if due { logger.warning("\(message)") }
    }
}

/// Sends spans while the node runs, and what is left once everything else
/// has stopped.
struct TraceExportService: Service {
    let exporter: OTLPExporter

    func run() async throws {
        await cancelWhenGracefulShutdown { await exporter.run() }
    }
}
