import Foundation
import NorthstarHost

// northstar-bench: micro and store benchmarks. Method and figures: Benchmarks/README.md.
// Usage: northstar-bench plugin-call | append | commit | gestures | json | patch   (build with -c release)

/// Runs `body` `count` times and returns nanoseconds per iteration.
func nanosPerCall(_ count: Int, _ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    for _ in 0..<count { try body() }
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) * 1e9 / Double(count) + Double(elapsed.components.attoseconds) / 1e9 / Double(count)
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// The cost of one host-to-plugin call, against a Swift closure call, side by side.
func pluginCall() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bench-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let config = directory.appendingPathComponent("c.json")
    let plugin = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("libNorthstarAPIKey.so").path
    // sha256("bench-key")
    try #"{"plugins":[{"path":"\#(plugin)","config":{"keys":[{"sha256":"\#(sha256Hex("bench-key"))","tenant_id":"t_bench","user_id":"u","env":"dev","scopes":["read"]}]}}]}"#
        .write(to: config, atomically: true, encoding: .utf8)
    let set = try PluginSet(config: try NorthstarConfig.load(file: config.path, overrides: .init(dataDirectory: directory.path)))
    let apikey = set.plugins[0]
    let pass = Credential(source: .header, scheme: "Bearer", value: "x")
    let key = Credential(source: .header, scheme: "ApiKey", value: "bench-key")
    let baseline: (Credential) -> Bool = { $0.scheme.lowercased() == "apikey" }
    let count = 1_000_000
    for round in 1...3 {
        let swiftCall = nanosPerCall(count) { _ = baseline(pass) }
        let passCall = try nanosPerCall(count) { _ = try apikey.verify(pass) }
        let acceptCall = try nanosPerCall(count / 10) { _ = try apikey.verify(key) }
        print(String(format: "round %d: swift closure %.1f ns | plugin verify (pass, no work) %.1f ns | plugin verify (SHA-256 + claims) %.1f ns",
                     round, swiftCall, passCall, acceptCall))
    }
}

func sha256Hex(_ text: String) -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
    let input = Pipe(), output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    try? process.run()
    input.fileHandleForWriting.write(Data(text.utf8))
    try? input.fileHandleForWriting.close()
    process.waitUntilExit()
    return String(String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).prefix(64))
}

/// Where each write's time went, summed: the whole transaction, and its COMMIT.
final class CommitTimes: @unchecked Sendable {
    private let lock = NSLock()
    private var writes = 0
    private var transaction = Duration.zero
    private var commit = Duration.zero

    func add(_ timings: CommitTimings) {
        lock.withLock { writes += timings.writes; transaction += timings.transaction; commit += timings.commit }
    }

    /// "transaction X ms, of which COMMIT Y ms, per write", then starts over.
    func report() -> String {
        lock.withLock {
            defer { (writes, transaction, commit) = (0, .zero, .zero) }
            guard writes > 0 else { return "" }
            return String(format: " [per write: transaction %.2f ms, of which COMMIT %.2f ms]",
                          seconds(transaction) * 1000 / Double(writes), seconds(commit) * 1000 / Double(writes))
        }
    }
}

let commitTimes = CommitTimes()

/// A kernel on a fresh SQLite file, or on the PostgreSQL database named by
/// `NORTHSTAR_BENCH_PG` (a new, empty one), with an anonymous identity to act as.
func benchKernel() async throws -> (Kernel, RequestContext) {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bench-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let hub = StreamHub()
    let store: any EventStore
    if let url = ProcessInfo.processInfo.environment["NORTHSTAR_BENCH_PG"] {
        store = try await PostgresStore.open(url: url, poolSize: 20, onCommit: { commitTimes.add($0) })
        print("store: postgres (pool of 20)")
    } else {
        store = try SQLiteStore(path: directory.appendingPathComponent("bench.sqlite").path) { hub.publish($0) }
        print("store: sqlite")
    }
    let auth = AuthChain(providers: [], env: "dev",
                         anonymous: .init(tenantID: "t_bench", userID: "bench", scopes: ["read", "write"]))
    let context = try await auth.authenticate(nil, requestID: "bench",
                                              traceparent: "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01")
    return (Kernel(store: store, hub: hub, auth: auth), context)
}

/// Durable appends per second: one writer, then 64 concurrent writers over 16 threads.
func append() async throws {
    let (kernel, context) = try await benchKernel()
    let threads = try await (0..<16).asyncMap { _ in try await kernel.threads.create(try CreateResourceRequest(json: .object([:])), context: context) }
    let message = try PostMessageRequest(json: .object(["text": .string("benchmark message of a typical length, about sixty bytes")]))
    let sequential = 2000
    var start = ContinuousClock.now
    for _ in 0..<sequential { _ = try await kernel.threads.post(message, threadID: threads[0].id, context: context) }
    print(String(format: "append, 1 writer: %.0f events/s (%d events)", Double(sequential) / seconds(ContinuousClock.now - start), sequential)
          + commitTimes.report())
    let concurrent = 8000
    start = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for worker in 0..<64 {
            group.addTask {
                for _ in 0..<(concurrent / 64) { _ = try await kernel.threads.post(message, threadID: threads[worker % 16].id, context: context) }
            }
        }
        try await group.waitForAll()
    }
    print(String(format: "append, 64 writers on 16 streams: %.0f events/s (%d events)", Double(concurrent) / seconds(ContinuousClock.now - start), concurrent)
          + commitTimes.report())
}

/// Durable commits per second on one canvas (sequential, each on the new head) and across 16 canvases.
func commit() async throws {
    let (kernel, context) = try await benchKernel()
    let limits = CommandLimits()
    let one = try await kernel.canvases.create(try CreateResourceRequest(json: .object([:])), context: context)
    let count = 2000
    var start = ContinuousClock.now
    for rev in 0..<count {
        let command = try CanvasCommand(json: try JSONValue.parse(#"{"command_id":"c\#(rev)","base_rev":\#(rev),"ops":[{"op":"add","path":"/k\#(rev % 50)","value":\#(rev)}]}"#), limits: limits)
        _ = try await kernel.canvases.commit(command, canvasID: one.id, context: context)
    }
    print(String(format: "commit, one canvas: %.0f commits/s (%d)", Double(count) / seconds(ContinuousClock.now - start), count))
    let canvases = try await (0..<16).asyncMap { _ in try await kernel.canvases.create(try CreateResourceRequest(json: .object([:])), context: context) }
    start = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for canvas in canvases {
            group.addTask {
                for rev in 0..<(count / 4 / 16) {
                    let command = try CanvasCommand(json: try JSONValue.parse(#"{"command_id":"c\#(rev)","base_rev":\#(rev),"ops":[{"op":"add","path":"/k","value":\#(rev)}]}"#), limits: limits)
                    _ = try await kernel.canvases.commit(command, canvasID: canvas.id, context: context)
                }
            }
        }
        try await group.waitForAll()
    }
    print(String(format: "commit, 16 canvases concurrently: %.0f commits/s (%d)", Double(count / 4 / 16 * 16) / seconds(ContinuousClock.now - start), count / 4 / 16 * 16))
}

/// Durable gesture samples per second: batches of 100 and of 1,000 samples
/// into one gesture, then 16 gestures appended concurrently (batches of 100).
func gestures() async throws {
    let (kernel, context) = try await benchKernel()
    let canvas = try await kernel.canvases.create(try CreateResourceRequest(json: .object([:])), context: context)
    func batch(_ start: Int, _ count: Int, first: Bool) -> JSONValue {
        .object(["samples": .array((start..<start + count).map { index in
            .object(["t_ms": .number(Double(index)), "x": .number(Double(index % 800)), "y": .number(Double(index % 600)),
                     "pointer": .number(1), "phase": .string(first && index == start ? "down" : "move"), "pressure": .number(0.5)])
        })])
    }
    for size in [100, 1000] {
        let gesture = try await kernel.gestures.start(canvasID: canvas.id, body: .object([:]), context: context)
        let batches = 200_000 / size
        let start = ContinuousClock.now
        for index in 0..<batches {
            _ = try await kernel.gestures.append(gestureID: gesture.id, canvasID: nil, body: batch(index * size, size, first: index == 0), context: context)
        }
        print(String(format: "gesture samples, batches of %d, one gesture: %.0f samples/s (%d samples)",
                     size, Double(batches * size) / seconds(ContinuousClock.now - start), batches * size))
    }
    let many = try await (0..<16).asyncMap { _ in try await kernel.gestures.start(canvasID: canvas.id, body: .object([:]), context: context) }
    let start = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for gesture in many {
            group.addTask {
                for index in 0..<50 {
                    _ = try await kernel.gestures.append(gestureID: gesture.id, canvasID: nil, body: batch(index * 100, 100, first: index == 0), context: context)
                }
            }
        }
        try await group.waitForAll()
    }
    print(String(format: "gesture samples, 16 gestures concurrently, batches of 100: %.0f samples/s (%d samples)",
                 Double(16 * 50 * 100) / seconds(ContinuousClock.now - start), 16 * 50 * 100))
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}

/// Reading a request body into a `JSONValue`: the parser against
/// Foundation's `JSONDecoder` (what `JSONValue.parse` used before), side by
/// side on the same bodies, in one run.
func json() throws {
    let bodies: [(String, Data)] = [
        ("message", Data(#"{"text":"lt_1764739200123456789"}"#.utf8)),
        ("message with data", Data(#"{"text":"hello","data":{"kind":"note","tags":["a","b"],"n":3}}"#.utf8)),
        ("canvas command", Data(#"{"command_id":"cmd_01","base_rev":41,"ops":[{"op":"add","path":"/shapes/s1","value":{"x":10.5,"y":-3,"w":100,"h":50,"label":"Box \u00e9"}},{"op":"replace","path":"/title","value":"Plan"}]}"#.utf8)),
    ]
    let decoder = JSONDecoder()
    for (name, body) in bodies {
        let parsed = try JSONValue.parse(body), decoded = try decoder.decode(JSONValue.self, from: body)
        precondition(parsed == decoded, "the two disagree on \(name)")
    }
    let count = 20_000
    for round in 1...3 {
        let cells = try bodies.map { name, body in
            let old = try nanosPerCall(count) { _ = try decoder.decode(JSONValue.self, from: body) } / 1000
            let new = try nanosPerCall(count) { _ = try JSONValue.parse(body) } / 1000
            return String(format: "%@ (%d bytes) JSONDecoder %.2f µs, parser %.2f µs (%.1fx)", name, body.count, old, new, old / new)
        }
        print("round \(round): " + cells.joined(separator: " | "))
    }
}

/// A canvas command's JSON Patch applied to documents of growing size, in
/// one run: 1,000 operations on one element of an array of 2,000 to
/// 200,000 numbers. An operation changes its path in place, so its cost
/// should not grow with the array; one that copied each container on its
/// path grew with it (1.1 s of the writer's time per command at 200,000).
func patch() throws {
    func ops(_ op: String, _ path: String) -> [JSONValue] {
        (0..<1000).map { .object(["op": .string(op), "path": .string(path), "value": .number(Double($0))]) }
    }
    let replaces = try JSONPatch(ops("replace", "/a/5"), maxDepth: 32)
    let inserts = try JSONPatch(ops("add", "/a/0"), maxDepth: 32)
    for round in 1...3 {
        var cells: [String] = []
        for size in [2_000, 20_000, 200_000] {
            let document = JSONValue.object(["a": .array(Array(repeating: .number(0), count: size))])
            let replace = try nanosPerCall(10) { _ = try replaces.apply(to: document, copyBudget: 1 << 20) } / 1000
            let insert = try nanosPerCall(10) { _ = try inserts.apply(to: document, copyBudget: 1 << 20) } / 1000
            cells.append(String(format: "%d elements: replace %.2f µs, insert at 0 %.2f µs per op", size, replace / 1000, insert / 1000))
        }
        print("round \(round): " + cells.joined(separator: " | "))
    }
}

switch CommandLine.arguments.dropFirst().first {
case "plugin-call": try pluginCall()
case "append": try await append()
case "commit": try await commit()
case "gestures": try await gestures()
case "json": try json()
case "patch": try patch()
default:
    print("usage: northstar-bench plugin-call | append | commit | gestures | json | patch")
    exit(2)
}
