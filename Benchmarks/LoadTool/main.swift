import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

// northstar-load: N Server-Sent-Events or WebSocket subscribers on any URL, a publisher at
// a fixed rate on any URL, and what arrived: delivered events per second and
// publish-to-deliver latency percentiles. Method: Benchmarks/README.md.
//
// Two publisher modes: open loop (--rate: a publish every 1/rate s, whatever
// the answers) and closed loop (--in-flight K: K connections, each sending
// its next publish when the last one was answered, as fast as the server goes).
//
// The publish body carries the send time: `{{ts}}` in --body becomes
// `lt_<monotonic ns>`, and each subscriber looks for `lt_<digits>` in the
// data it receives, so any server that relays the body can be measured.

struct Options {
    var subscribeURL = ""
    var publishURL = ""
    var subscribers = 100
    var rate = 100.0
    var seconds = 10.0
    var headers: [(String, String)] = []
    var body = #"{"text":"{{ts}}"}"#
    /// Closed loop with this many publishes in flight; 0: open loop at `rate`.
    var inFlight = 0

    static func parse(_ arguments: [String]) -> Options? {
        var options = Options()
        var iterator = arguments.dropFirst().makeIterator()
        while let flag = iterator.next() {
            guard let value = iterator.next() else { return nil }
            switch flag {
            case "--subscribe": options.subscribeURL = value
            case "--publish": options.publishURL = value
            case "--subscribers": options.subscribers = Int(value) ?? 0
            case "--rate": options.rate = Double(value) ?? 0
            case "--seconds": options.seconds = Double(value) ?? 0
            case "--body": options.body = value
            case "--in-flight": options.inFlight = Int(value) ?? -1
            case "--header":
                let parts = value.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2 else { return nil }
                options.headers.append((parts[0], parts[1]))
            default: return nil
            }
        }
        guard !options.subscribeURL.isEmpty, !options.publishURL.isEmpty, options.subscribers > 0,
              options.rate > 0, options.seconds > 0, options.inFlight >= 0 else { return nil }
        return options
    }
}

/// host, port and path of an http:// (or ws://) URL.
func split(_ url: String) -> (String, Int, String)? {
    guard let parsed = URLComponents(string: url), ["http", "ws"].contains(parsed.scheme), let host = parsed.host else { return nil }
    var path = parsed.percentEncodedPath.isEmpty ? "/" : parsed.percentEncodedPath
    if let query = parsed.percentEncodedQuery { path += "?" + query }
    return (host, parsed.port ?? 80, path)
}

func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// Everything the subscribers saw. Each subscriber keeps the latencies it
/// measured on its own event loop (no lock per delivery: the tool's own cost
/// is in every figure, so it must stay small); only counts are shared.
final class Tally: Sendable {
    private let state = NIOLockedValueBox((connected: 0, failed: 0, delivered: 0, recorders: [LatencyRecorder]()))

    func connected() { state.withLockedValue { $0.connected += 1 } }
    func failed() { state.withLockedValue { $0.failed += 1 } }
    func register(_ recorder: LatencyRecorder) { state.withLockedValue { $0.recorders.append(recorder) } }
    func delivered(_ count: Int) { state.withLockedValue { $0.delivered += count } }
    var counts: (connected: Int, failed: Int, delivered: Int) { state.withLockedValue { ($0.connected, $0.failed, $0.delivered) } }

    /// Every latency measured, gathered from each subscriber's loop.
    func latencies() throws -> [UInt64] {
        try state.withLockedValue { $0.recorders }.flatMap { recorder in
            try recorder.loop.submit { recorder.latencies }.wait()
        }
    }
}

/// One subscriber's measurements: the latency of every `lt_<ns>` marker in
/// the bytes it read, scanned as bytes (a marker may be split across reads).
final class LatencyRecorder: @unchecked Sendable {
    let loop: any EventLoop
    private let tally: Tally
    // On `loop` only:
    fileprivate(set) var latencies: [UInt64] = []
    /// The end of the last read, when it may be the start of a marker.
    private var carry: [UInt8] = []

    init(loop: any EventLoop, tally: Tally) {
        self.loop = loop
        self.tally = tally
        tally.register(self)
    }

    func scan(_ buffer: ByteBuffer, arrived: UInt64) {
        let before = latencies.count
        if carry.isEmpty {
            buffer.withUnsafeReadableBytes { scan($0, arrived: arrived) }
        } else {
            var joined = carry
            joined.append(contentsOf: buffer.readableBytesView)
            carry = []
            joined.withUnsafeBytes { scan($0, arrived: arrived) }
        }
        if latencies.count > before { tally.delivered(latencies.count - before) }
    }

    func failed() { tally.failed() }

    private func scan(_ bytes: UnsafeRawBufferPointer, arrived: UInt64) {
        let l = UInt8(ascii: "l"), t = UInt8(ascii: "t"), underscore = UInt8(ascii: "_")
        let zero = UInt8(ascii: "0"), nine = UInt8(ascii: "9")
        var index = 0
        while index < bytes.count {
            guard bytes[index] == l else { index += 1; continue }
            // A marker cut by the end of this read: keep it for the next one.
            if index + 3 > bytes.count { carry = Array(bytes[index...]); return }
            guard bytes[index + 1] == t, bytes[index + 2] == underscore else { index += 1; continue }
            var end = index + 3, sent: UInt64 = 0
            while end < bytes.count, bytes[end] >= zero, bytes[end] <= nine {
                sent = sent &* 10 &+ UInt64(bytes[end] - zero)
                end += 1
            }
            if end == bytes.count { carry = Array(bytes[index...]); return }
            if end > index + 3, sent <= arrived { latencies.append(arrived - sent) }
            index = end
        }
    }
}

/// Reads WebSocket frames and records the latency of every `lt_<ns>` in them.
final class WebSocketSubscriberHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = WebSocketFrame
    let recorder: LatencyRecorder
    init(recorder: LatencyRecorder) { self.recorder = recorder }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let arrived = now()
        switch frame.opcode {
        case .text:
            recorder.scan(frame.unmaskedData, arrived: arrived)
        case .connectionClose:
            context.close(promise: nil)
        case .ping:
            // Answer the server's keepalive, masked as a client must.
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(NIOAny(pong), promise: nil)
        default:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        recorder.failed()
        context.close(promise: nil)
    }
}

/// Opens one WebSocket subscriber: the handshake, then frames to the handler.
func connectWebSocket(_ group: any EventLoopGroup, host: String, port: Int, path: String, headers: [(String, String)],
                      tally: Tally) async throws -> any Channel {
    let channel = try await ClientBootstrap(group: group)
        .channelInitializer { channel in
            let upgrader = NIOWebSocketClientUpgrader(
                maxFrameSize: 1 << 20,
                upgradePipelineHandler: { channel, _ in
                    tally.connected()
                    let recorder = LatencyRecorder(loop: channel.eventLoop, tally: tally)
                    return channel.pipeline.addHandler(WebSocketSubscriberHandler(recorder: recorder))
                })
            return channel.pipeline.addHTTPClientHandlers(
                withClientUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
        }
        .connect(host: host, port: port).get()
    var head = request(.GET, host: host, port: port, path: path, headers: headers)
    head.headers.add(name: "Content-Length", value: "0")
    channel.write(HTTPClientRequestPart.head(head), promise: nil)
    try await channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
    return channel
}

/// Reads an SSE response and records the latency of every `lt_<ns>` it finds.
final class SubscriberHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    let tally: Tally
    private var recorder: LatencyRecorder?
    init(tally: Tally) { self.tally = tally }

    func handlerAdded(context: ChannelHandlerContext) {
        recorder = LatencyRecorder(loop: context.eventLoop, tally: tally)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            if head.status == .ok { tally.connected() } else { tally.failed(); context.close(promise: nil) }
        case .body(let buffer):
            recorder?.scan(buffer, arrived: now())
        case .end:
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        tally.failed()
        context.close(promise: nil)
    }
}

/// Discards the publisher's responses, counting the failures; in a closed
/// loop, sends the next publish when one is answered, until `deadline`.
final class PublisherHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    let failures = NIOLockedValueBox(0)
    let published = NIOLockedValueBox(0)
    /// Set for a closed loop: sends one publish on a channel.
    var next: ((any Channel) -> Void)?
    var deadline: UInt64 = 0
    let finished = NIOLockedValueBox(false)

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head) where head.status.code >= 300:
            failures.withLockedValue { $0 += 1 }
        case .end:
            guard let next else { return }
            if now() < deadline { next(context.channel) } else { finished.withLockedValue { $0 = true } }
        default:
            break
        }
    }
}

func connect(_ group: any EventLoopGroup, host: String, port: Int, handler: any ChannelHandler & Sendable) async throws -> any Channel {
    try await ClientBootstrap(group: group)
        .channelOption(.socketOption(.so_reuseaddr), value: 1)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                try channel.pipeline.syncOperations.addHandler(handler)
            }
        }
        .connect(host: host, port: port).get()
}

func request(_ method: HTTPMethod, host: String, port: Int, path: String, headers: [(String, String)]) -> HTTPRequestHead {
    var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
    head.headers.add(name: "Host", value: "\(host):\(port)")
    for (name, value) in headers { head.headers.add(name: name, value: value) }
    return head
}

func percentile(_ sorted: [UInt64], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1e6
}

guard let options = Options.parse(CommandLine.arguments),
      let (subHost, subPort, subPath) = split(options.subscribeURL),
      let (pubHost, pubPort, pubPath) = split(options.publishURL) else {
    print("""
    usage: northstar-load --subscribe http://HOST:PORT/sse/... (or ws://HOST:PORT/ws/...) --publish http://HOST:PORT/... \\
           [--subscribers N] [--rate PER_SECOND | --in-flight K] [--seconds S] [--header 'Name: value']... [--body '{"text":"{{ts}}"}']
    """)
    exit(2)
}

let group = MultiThreadedEventLoopGroup.singleton
let tally = Tally()
var subscribers: [any Channel] = []
let webSocket = options.subscribeURL.hasPrefix("ws://")
do {
    for _ in 0..<options.subscribers {
        if webSocket {
            subscribers.append(try await connectWebSocket(group, host: subHost, port: subPort, path: subPath,
                                                          headers: options.headers, tally: tally))
            continue
        }
        let channel = try await connect(group, host: subHost, port: subPort, handler: SubscriberHandler(tally: tally))
        var head = request(.GET, host: subHost, port: subPort, path: subPath, headers: options.headers)
        head.headers.add(name: "Accept", value: "text/event-stream")
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
        subscribers.append(channel)
    }
} catch {
    // Out of file descriptors, or the server went away: say so, not a trap.
    print("could not open subscriber \(subscribers.count + 1) of \(options.subscribers): \(error)")
    exit(1)
}
// Let every subscription finish its handshake before publishing.
let settleDeadline = now() + 10_000_000_000
while tally.counts.connected + tally.counts.failed < options.subscribers, now() < settleDeadline {
    try await Task.sleep(for: .milliseconds(20))
}
let connected = tally.counts.connected

/// Sends one publish, stamped with the time it leaves.
func publish(on channel: any Channel, counter: NIOLockedValueBox<Int>) {
    let body = options.body.replacingOccurrences(of: "{{ts}}", with: "lt_\(now())")
    var head = request(.POST, host: pubHost, port: pubPort, path: pubPath, headers: options.headers)
    head.headers.add(name: "Content-Type", value: "application/json")
    head.headers.add(name: "Content-Length", value: "\(body.utf8.count)")
    channel.write(HTTPClientRequestPart.head(head), promise: nil)
    channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil)
    channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    counter.withLockedValue { $0 += 1 }
}

var publishers: [(PublisherHandler, any Channel)] = []
for _ in 0..<max(1, options.inFlight) {
    let handler = PublisherHandler()
    publishers.append((handler, try await connect(group, host: pubHost, port: pubPort, handler: handler)))
}
// Marks on stderr around the publishing, for a script that measures the
// server only while it delivers (connecting and closing left out).
FileHandle.standardError.write(Data("publishing\n".utf8))
let started = now()
if options.inFlight > 0 {
    // Closed loop: each connection sends its next publish when the last is answered.
    let deadline = started + UInt64(options.seconds * 1e9)
    for (handler, channel) in publishers {
        handler.deadline = deadline
        handler.next = { [handler] channel in publish(on: channel, counter: handler.published) }
        channel.eventLoop.execute { publish(on: channel, counter: handler.published) }
    }
    while now() < deadline + 10_000_000_000, !publishers.allSatisfy({ $0.0.finished.withLockedValue { $0 } }) {
        try await Task.sleep(for: .milliseconds(20))
    }
} else {
    let interval = 1.0 / options.rate
    let (handler, channel) = publishers[0]
    for index in 0..<Int(options.rate * options.seconds) {
        let due = started + UInt64(Double(index) * interval * 1e9)
        if due > now() { try await Task.sleep(for: .nanoseconds(Int64(due - now()))) }
        publish(on: channel, counter: handler.published)
    }
}
FileHandle.standardError.write(Data("published\n".utf8))
let total = publishers.reduce(0) { $0 + $1.0.published.withLockedValue { $0 } }
let publishSeconds = Double(now() - started) / 1e9
let expected = total * connected
let drainDeadline = now() + 10_000_000_000
while tally.counts.delivered < expected, now() < drainDeadline { try await Task.sleep(for: .milliseconds(50)) }
let elapsed = Double(now() - started) / 1e9

let latencies = try tally.latencies().sorted()
print(String(format: "subscribers: %d connected, %d failed", connected, tally.counts.failed))
print(String(format: "published: %d in %.2f s (%.0f/s), %d refused", total, publishSeconds, Double(total) / publishSeconds,
             publishers.reduce(0) { $0 + $1.0.failures.withLockedValue { $0 } }))
print(String(format: "delivered: %d of %d (%.2f%%), %.0f events/s", latencies.count, expected,
             expected == 0 ? 0 : 100 * Double(latencies.count) / Double(expected), Double(latencies.count) / elapsed))
print(String(format: "latency ms: p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f",
             percentile(latencies, 0.5), percentile(latencies, 0.9), percentile(latencies, 0.99),
             percentile(latencies, 0.999), latencies.last.map { Double($0) / 1e6 } ?? .nan))
for channel in subscribers { channel.close(promise: nil) }
for (_, channel) in publishers { channel.close(promise: nil) }
