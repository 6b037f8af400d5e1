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
// A publishing connection the server closes (nginx closes a keep-alive
// connection after 1,000 requests) is reopened; only accepted publishes
// are expected at the subscribers, and the output counts the refused and
// unanswered ones. Deliveries per second run from the first publish to the
// last arrival.
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
    private let state = NIOLockedValueBox((connected: 0, failed: 0, delivered: 0, recorders: [LatencyRecorder](),
                                            reasons: [String: Int]()))

    func connected() { state.withLockedValue { $0.connected += 1 } }
    /// A subscriber refused (`HTTP 429`) or broken (an error's description).
    func failed(_ reason: String) {
        state.withLockedValue { state in
            state.failed += 1
            state.reasons[reason, default: 0] += 1
        }
    }
    /// Why subscribers failed: "HTTP 429: 44, ..." (most frequent first), or "" when none did.
    var failureReasons: String {
        state.withLockedValue { state in
            state.reasons.sorted { $0.value > $1.value }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        }
    }
    func register(_ recorder: LatencyRecorder) { state.withLockedValue { $0.recorders.append(recorder) } }
    func delivered(_ count: Int) { state.withLockedValue { $0.delivered += count } }
    var counts: (connected: Int, failed: Int, delivered: Int) { state.withLockedValue { ($0.connected, $0.failed, $0.delivered) } }

    /// Every latency measured, and when the last event arrived (0 if none),
    /// gathered from each subscriber's loop.
    func gather() throws -> (latencies: [UInt64], lastArrival: UInt64) {
        let recorders = state.withLockedValue { $0.recorders }
        var latencies: [UInt64] = [], lastArrival: UInt64 = 0
        for recorder in recorders {
            let (own, last) = try recorder.loop.submit { (recorder.latencies, recorder.lastArrival) }.wait()
            latencies += own
            lastArrival = max(lastArrival, last)
        }
        return (latencies, lastArrival)
    }
}

/// One subscriber's measurements: the latency of every `lt_<ns>` marker in
/// the bytes it read, scanned as bytes (a marker may be split across reads).
final class LatencyRecorder: @unchecked Sendable {
    let loop: any EventLoop
    private let tally: Tally
    // On `loop` only:
    fileprivate(set) var latencies: [UInt64] = []
    fileprivate(set) var lastArrival: UInt64 = 0
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
        if latencies.count > before {
            lastArrival = arrived
            tally.delivered(latencies.count - before)
        }
    }

    func failed(_ error: any Error) { tally.failed("\(error)") }

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
        recorder.failed(error)
        context.close(promise: nil)
    }
}

/// Counts a WebSocket handshake the server refused (any answer but 101,
/// which NIO's upgrader passes on as a plain response), once; removed when
/// the upgrade succeeds.
final class HandshakeRefusalHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    let tally: Tally
    private var counted = false
    init(tally: Tally) { self.tally = tally }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data), !counted else { return }
        counted = true
        tally.failed("HTTP \(head.status.code)")
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !counted { tally.failed("\(error)") }
        counted = true
        context.close(promise: nil)
    }
}

/// Opens one WebSocket subscriber: the handshake, then frames to the handler.
func connectWebSocket(_ group: any EventLoopGroup, host: String, port: Int, path: String, headers: [(String, String)],
                      tally: Tally) async throws -> any Channel {
    let channel = try await ClientBootstrap(group: group)
        .channelInitializer { channel in
            let refusals = HandshakeRefusalHandler(tally: tally)
            let upgrader = NIOWebSocketClientUpgrader(
                maxFrameSize: 1 << 20,
                upgradePipelineHandler: { channel, _ in
                    tally.connected()
                    let recorder = LatencyRecorder(loop: channel.eventLoop, tally: tally)
                    return channel.pipeline.removeHandler(refusals).flatMap {
                        channel.pipeline.addHandler(WebSocketSubscriberHandler(recorder: recorder))
                    }
                })
            return channel.pipeline.addHTTPClientHandlers(
                withClientUpgrade: (upgraders: [upgrader], completionHandler: { _ in })
            ).flatMap { channel.pipeline.addHandler(refusals) }
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
    /// Counted as connected or failed (once: a refused one may also error as it closes).
    private var settled = false
    init(tally: Tally) { self.tally = tally }

    func handlerAdded(context: ChannelHandlerContext) {
        recorder = LatencyRecorder(loop: context.eventLoop, tally: tally)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard !settled else { return }
            settled = true
            if head.status == .ok { tally.connected() } else { tally.failed("HTTP \(head.status.code)"); context.close(promise: nil) }
        case .body(let buffer):
            recorder?.scan(buffer, arrived: now())
        case .end:
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !settled { tally.failed("\(error)") }
        settled = true
        context.close(promise: nil)
    }
}

/// One publishing connection and what came of its publishes.
///
/// A server may close a keep-alive connection after any answer (nginx does
/// after 1,000 requests by default, and says so with `Connection: close`):
/// the next publish then goes on a new connection, as any HTTP client's
/// would. A publish already sent on the old one gets no answer and is
/// counted unanswered; only accepted publishes are expected at the
/// subscribers. In a closed loop (`deadline` set) each answer sends the
/// next publish until the deadline.
final class Publisher: @unchecked Sendable {
    private struct State {
        var connection: EventLoopFuture<any Channel>?
        /// Which connection is current: a closing one's news is not acted on twice.
        var generation = 0
        var sent = 0, accepted = 0, refused = 0, reconnections = 0
        /// Publishes whose connection closed before they were answered.
        var lost = 0
        /// A closed loop's end (0: an open loop).
        var deadline: UInt64 = 0
        var finished = false, closing = false
    }

    private let open: @Sendable (Publisher, _ generation: Int) -> EventLoopFuture<any Channel>
    private let send: @Sendable (any Channel) -> Void
    private let state = NIOLockedValueBox(State())

    /// `open` connects a new channel whose handler answers to this publisher
    /// for that generation; `send` writes one publish on a channel.
    init(open: @escaping @Sendable (Publisher, Int) -> EventLoopFuture<any Channel>,
         send: @escaping @Sendable (any Channel) -> Void) {
        self.open = open
        self.send = send
        state.withLockedValue { reopen(&$0) }
    }

    /// Waits for the first connection (a server that is not there fails the run at once).
    func connected() async throws { _ = try await state.withLockedValue { $0.connection }?.get() }

    var counts: (sent: Int, accepted: Int, refused: Int, lost: Int, reconnections: Int) {
        state.withLockedValue { ($0.sent, $0.accepted, $0.refused, $0.lost, $0.reconnections) }
    }
    var finished: Bool { state.withLockedValue { $0.finished } }

    /// Sends one publish, on the current connection once it is open. One
    /// sent on a connection that could not open stays unanswered.
    func publish() {
        let connection = state.withLockedValue { state in
            state.sent += 1
            return state.connection
        }
        connection?.whenSuccess(send)
    }

    /// The connection of `generation` ends: after this answer, as the
    /// server said, or now (closed without warning, or failed), leaving
    /// `unanswered` publishes without an answer. Later publishes go on a new
    /// connection; in a closed loop, each lost publish is replaced, so the
    /// loop keeps its publishes in flight.
    func connectionEnds(generation: Int, unanswered: Int) {
        let replace = state.withLockedValue { state -> Int in
            if !state.closing, generation == state.generation { reopen(&state) }
            state.lost += unanswered
            return unanswered > 0 && Self.loopGoesOn(&state) ? unanswered : 0
        }
        for _ in 0..<replace { publish() }
    }

    private func reopen(_ state: inout State) {
        if state.connection != nil { state.reconnections += 1 }
        state.generation += 1
        state.connection = open(self, state.generation)
    }

    /// Makes this a closed loop: each answer sends the next publish until `deadline`.
    func closeLoop(until deadline: UInt64) { state.withLockedValue { $0.deadline = deadline } }

    /// An answer arrived: counted, and in a closed loop the next publish goes.
    func answered(accepted: Bool) {
        let next = state.withLockedValue { state -> Bool in
            if accepted { state.accepted += 1 } else { state.refused += 1 }
            return Self.loopGoesOn(&state)
        }
        if next { publish() }
    }

    /// Whether a closed loop sends another publish: yes before its
    /// deadline; past it, the loop is finished. Never in an open loop.
    private static func loopGoesOn(_ state: inout State) -> Bool {
        guard state.deadline > 0, !state.finished else { return false }
        if now() < state.deadline { return true }
        state.finished = true
        return false
    }

    /// Closes the connection; nothing reopens it.
    func close() {
        let connection = state.withLockedValue { state in
            state.closing = true
            return state.connection
        }
        connection?.whenSuccess { $0.close(promise: nil) }
    }
}

/// Reads a publishing connection's answers for its `Publisher`, and counts
/// the publishes it sent that are still waiting for one.
final class PublisherHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    let publisher: Publisher
    let generation: Int
    private var accepted = false
    private var waiting = 0
    init(publisher: Publisher, generation: Int) {
        self.publisher = publisher
        self.generation = generation
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { waiting += 1 }
        context.write(data, promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            accepted = head.status.code < 300
            if !head.isKeepAlive { publisher.connectionEnds(generation: generation, unanswered: 0) }
        case .body:
            break
        case .end:
            waiting -= 1
            publisher.answered(accepted: accepted)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        publisher.connectionEnds(generation: generation, unanswered: waiting)
        waiting = 0
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

func connect(_ group: any EventLoopGroup, host: String, port: Int,
             handler: @escaping @Sendable () -> any ChannelHandler) -> EventLoopFuture<any Channel> {
    ClientBootstrap(group: group)
        .channelOption(.socketOption(.so_reuseaddr), value: 1)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                try channel.pipeline.syncOperations.addHandler(handler())
            }
        }
        .connect(host: host, port: port)
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
        let channel = try await connect(group, host: subHost, port: subPort, handler: { SubscriberHandler(tally: tally) }).get()
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

/// Writes one publish, stamped with the time it leaves.
@Sendable func sendPublish(on channel: any Channel) {
    let body = options.body.replacingOccurrences(of: "{{ts}}", with: "lt_\(now())")
    var head = request(.POST, host: pubHost, port: pubPort, path: pubPath, headers: options.headers)
    head.headers.add(name: "Content-Type", value: "application/json")
    head.headers.add(name: "Content-Length", value: "\(body.utf8.count)")
    channel.write(HTTPClientRequestPart.head(head), promise: nil)
    channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil)
    channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
}

let closedLoop = options.inFlight > 0
var publishers: [Publisher] = []
do {
    for _ in 0..<max(1, options.inFlight) {
        let publisher = Publisher(open: { publisher, generation in
            connect(group, host: pubHost, port: pubPort, handler: { PublisherHandler(publisher: publisher, generation: generation) })
        }, send: sendPublish)
        try await publisher.connected()
        publishers.append(publisher)
    }
} catch {
    print("could not open a publishing connection to \(options.publishURL): \(error)")
    exit(1)
}
// Marks on stderr around the publishing, for a script that measures the
// server only while it delivers (connecting and closing left out).
FileHandle.standardError.write(Data("publishing\n".utf8))
let started = now()
if closedLoop {
    // Closed loop: each connection sends its next publish when the last is answered.
    let deadline = started + UInt64(options.seconds * 1e9)
    for publisher in publishers {
        publisher.closeLoop(until: deadline)
        publisher.publish()
    }
    while now() < deadline + 10_000_000_000, !publishers.allSatisfy(\.finished) {
        try await Task.sleep(for: .milliseconds(20))
    }
} else {
    let interval = 1.0 / options.rate
    for index in 0..<Int(options.rate * options.seconds) {
        let due = started + UInt64(Double(index) * interval * 1e9)
        if due > now() { try await Task.sleep(for: .nanoseconds(Int64(due - now()))) }
        publishers[0].publish()
    }
}
FileHandle.standardError.write(Data("published\n".utf8))
let publishSeconds = Double(now() - started) / 1e9
// Every publish sent is waited for, up to 10 s, so a slow answer is not
// counted unanswered (one lost with its connection is not waited for).
func answers(_ publishers: [Publisher]) -> (sent: Int, accepted: Int, refused: Int, lost: Int, reconnections: Int) {
    var total = (sent: 0, accepted: 0, refused: 0, lost: 0, reconnections: 0)
    for counts in publishers.map(\.counts) {
        total.sent += counts.sent
        total.accepted += counts.accepted
        total.refused += counts.refused
        total.lost += counts.lost
        total.reconnections += counts.reconnections
    }
    return total
}
let answerDeadline = now() + 10_000_000_000
var counts = answers(publishers)
while now() < answerDeadline, counts.sent > counts.accepted + counts.refused + counts.lost {
    try await Task.sleep(for: .milliseconds(20))
    counts = answers(publishers)
}
let expected = counts.accepted * connected
let drainDeadline = now() + 10_000_000_000
while tally.counts.delivered < expected, now() < drainDeadline { try await Task.sleep(for: .milliseconds(50)) }

let (unsorted, lastArrival) = try tally.gather()
let latencies = unsorted.sorted()
// Deliveries per second: from the first publish to the last event's
// arrival, not to the end of the waits above (a publish left unanswered or
// an event never delivered would otherwise stretch it).
let elapsed = Double((lastArrival > 0 ? lastArrival : started + UInt64(publishSeconds * 1e9)) - started) / 1e9
let reasons = tally.failureReasons
print(String(format: "subscribers: %d connected, %d failed", connected, tally.counts.failed) + (reasons.isEmpty ? "" : " (\(reasons))"))
print(String(format: "published: %d in %.2f s (%.0f/s), %d accepted, %d refused, %d unanswered; %d reconnections",
             counts.sent, publishSeconds, Double(counts.sent) / publishSeconds, counts.accepted, counts.refused,
             counts.sent - counts.accepted - counts.refused, counts.reconnections))
print(String(format: "delivered: %d of %d (%.2f%%), %.0f events/s", latencies.count, expected,
             expected == 0 ? 0 : 100 * Double(latencies.count) / Double(expected), Double(latencies.count) / elapsed))
print(String(format: "latency ms: p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f",
             percentile(latencies, 0.5), percentile(latencies, 0.9), percentile(latencies, 0.99),
             percentile(latencies, 0.999), latencies.last.map { Double($0) / 1e6 } ?? .nan))
for channel in subscribers { channel.close(promise: nil) }
publishers.forEach { $0.close() }
