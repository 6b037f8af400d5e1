import Foundation
import Testing
@testable import NorthstarHost

/// Graft in the kernel: capture with validation, and replay paced exactly
/// on a virtual clock.
@Suite struct GraftTests {
    let fixture: StoreFixture
    let kernel: Kernel
    let alice = StoreFixture.context()

    init() throws {
        fixture = try StoreFixture()
        kernel = fixture.kernel
    }

    func sample(_ t: Double, _ phase: String, pointer: Int = 1, x: Double = 1, y: Double = 2) -> JSONValue {
        .object(["t_ms": .number(t), "x": .number(x), "y": .number(y), "pointer": .number(Double(pointer)), "phase": .string(phase)])
    }

    func batch(_ samples: [JSONValue]) -> JSONValue { .object(["samples": .array(samples)]) }

    func add(_ gesture: Gesture, _ body: JSONValue) async throws -> (Gesture, StreamEvent) {
        try await kernel.gestures.append(gestureID: gesture.id, canvasID: nil, body: body, context: alice)
    }

    func newGesture() async throws -> Gesture {
        let canvas = try await kernel.canvases.create(try CreateResourceRequest(json: .object([:])), context: alice)
        return try await kernel.gestures.start(canvasID: canvas.id, body: .object([:]), context: alice)
    }

    /// Runs a replay to its end, advancing the clock to each deadline, and
    /// returns each delivered sample's seq with the clock's time at delivery.
    func play(_ replay: GestureReplay<ManualClock>, on clock: ManualClock) async throws -> [(UInt64, Duration)] {
        let delivered = Task { () -> [(UInt64, Duration)] in
            var seen: [(UInt64, Duration)] = []
            while let item = try await replay.next() {
                if case .event(let event) = item { seen.append((event.seq, clock.now.offset)) }
            }
            return seen
        }
        while true {
            // Let the replay reach its next sleep (or its end), then jump to that deadline.
            var waited = 0
            while clock.nextDeadline == nil && waited < 2000 {
                try await Task.sleep(for: .milliseconds(1))
                waited += 1
                if waited > 200 { break }  // finished: nobody sleeps any more
            }
            guard let deadline = clock.nextDeadline else { break }
            clock.advance(to: deadline)
        }
        return try await delivered.value
    }

    @Test("each sample is delivered at its offset divided by speed, exactly, from any offset")
    func pacing() async throws {
        let gesture = try await newGesture()
        _ = try await add(gesture, batch([
            sample(0, "down"), sample(10, "move"), sample(25, "move"), sample(100, "move"), sample(1000, "up"),
            sample(1000, "down", pointer: 2), sample(1500, "up", pointer: 2),
        ]))
        let ended = try await kernel.gestures.end(gestureID: gesture.id, canvasID: nil, context: alice)
        #expect(ended.sampleCount == 7 && ended.durationMs == 1500 && ended.pointerCount == 2)

        let clock = ManualClock()
        let fast = GestureReplay(gesture: ended, store: fixture.store, options: ReplayOptions(speed: 2), after: 0, clock: clock)
        let seen = try await play(fast, on: clock)
        #expect(seen.map(\.0) == [1, 2, 3, 4, 5, 6, 7])
        #expect(seen.map(\.1) == [0, 5, 12.5, 50, 500, 500, 750].map { Duration.nanoseconds(Int64($0 * 1_000_000)) })

        let late = ManualClock()
        let fromMiddle = GestureReplay(gesture: ended, store: fixture.store, options: ReplayOptions(speed: 0.5, fromMs: 25), after: 0, clock: late)
        let middle = try await play(fromMiddle, on: late)
        #expect(middle.map(\.0) == [3, 4, 5, 6, 7])
        #expect(middle.map(\.1) == [0, 150, 1950, 1950, 2950].map { Duration.milliseconds($0) })

        let resumed = ManualClock()
        let afterFour = GestureReplay(gesture: ended, store: fixture.store, options: ReplayOptions(speed: 1), after: 4, clock: resumed)
        #expect(try await play(afterFour, on: resumed).map(\.0) == [5, 6, 7])
    }

    @Test("pace none delivers everything without waiting")
    func unpaced() async throws {
        let gesture = try await newGesture()
        _ = try await add(gesture, batch([sample(0, "down"), sample(60_000, "up")]))
        let clock = ManualClock()
        let replay = GestureReplay(gesture: try await kernel.resolver.resolveGesture(gesture.id, canvasID: nil, for: alice, access: .read),
                                   store: fixture.store, options: try ReplayOptions(query: "pace=none"), after: 0, clock: clock)
        var count = 0
        while let item = try await replay.next() { if case .event = item { count += 1 } }
        #expect(count == 2 && clock.now.offset == .zero)
    }

    @Test("bad samples are refused with the sample named, and nothing is stored")
    func validation() async throws {
        let gesture = try await newGesture()
        _ = try await add(gesture, batch([sample(5, "down")]))
        let refusals: [(JSONValue, String)] = [
            (batch([sample(1, "move")]), "goes back in time"),
            (batch([sample(6, "down")]), "already down"),
            (batch([sample(6, "move", pointer: 9)]), "before its down"),
            (batch([sample(6, "up", pointer: 9)]), "before its down"),
            (batch([sample(6, "hover")]), "phase"),
            (batch([.object(["t_ms": .number(6), "x": .number(.infinity), "y": .number(1), "pointer": .number(1), "phase": .string("move")])]), "finite"),
            (batch([.object(["t_ms": .number(6), "x": .number(.nan), "y": .number(1), "pointer": .number(1), "phase": .string("move")])]), "finite"),
            (batch([.object(["t_ms": .number(6), "x": .number(1), "pointer": .number(1), "phase": .string("move")])]), "samples[0].y"),
            (batch([.object(["t_ms": .number(6), "x": .number(1), "y": .number(1), "pointer": .number(1.5), "phase": .string("move")])]), "pointer"),
            (batch([.object(["t_ms": .number(6), "x": .number(1), "y": .number(1), "pointer": .number(1), "phase": .string("move"), "pressure": .number(2)])]), "pressure"),
            (batch([.object(["t_ms": .number(6), "x": .number(1), "y": .number(1), "pointer": .number(1), "phase": .string("move"), "colour": .string("red")])]), "unknown field"),
            (batch([sample(-1, "move")]), "t_ms"),
            (batch([sample(7_200_000, "move")]), "t_ms"),
            (batch([]), "at least one"),
            (.object(["samples": .string("no")]), "samples"),
            (batch(Array(repeating: sample(6, "move"), count: 1001)), "at most 1000"),
            (batch([sample(6, "move"), sample(7, "move"), sample(3, "move")]), "samples[2].t_ms"),
        ]
        for (body, words) in refusals {
            await #expect(throws: KernelError.self) {
                do {
                    _ = try await add(gesture, body)
                } catch let error as KernelError {
                    #expect(error.message.contains(words), "\(error.message) should say \(words)")
                    throw error
                }
            }
        }
        let after = try await kernel.resolver.resolveGesture(gesture.id, canvasID: nil, for: alice, access: .read)
        #expect(after.sampleCount == 1)
        #expect(try await fixture.store.events(stream: gesture.stream, after: 0, limit: 10).events.count == 1)
        _ = try await kernel.gestures.end(gestureID: gesture.id, canvasID: nil, context: alice)
        await #expect(throws: KernelError.self) {
            _ = try await add(gesture, batch([sample(9, "up")]))
        }
    }

    @Test("a batch bringing a gesture's 1001st pointer is refused whole, naming its sample; the pointers it has go on")
    func pointerLimit() async throws {
        let gesture = try await newGesture()
        let (full, _) = try await add(gesture, batch((0..<1000).map { sample(1, "down", pointer: $0) }))
        #expect(full.pointerCount == 1000)
        do {
            _ = try await add(gesture, batch([sample(2, "up", pointer: 0), sample(2, "down", pointer: 1000), sample(2, "up", pointer: 1)]))
            Issue.record("a 1001st pointer was taken")
        } catch let error as KernelError {
            #expect(error.code == "too_many_pointers" && error.kind == .tooLarge)
            #expect(error.details["index"] == .number(1))
            #expect(error.message.contains("limits.max_gesture_pointers"))
        }
        let kept = try await kernel.resolver.resolveGesture(gesture.id, canvasID: nil, for: alice, access: .read)
        #expect(kept.sampleCount == 1000 && kept.pointerCount == 1000)
        // A pointer it has comes back after its up: not a new one.
        let (after, _) = try await add(gesture, batch([sample(3, "up", pointer: 0), sample(4, "down", pointer: 0), sample(5, "up", pointer: 999)]))
        #expect(after.sampleCount == 1003 && after.pointerCount == 1000)
    }

    @Test("a gesture is another tenant's or another canvas's: the same 404 as a missing one")
    func isolation() async throws {
        let gesture = try await newGesture()
        let bob = StoreFixture.context("t_beta")
        for (context, canvas) in [(bob, nil as String?), (StoreFixture.context(env: "prod"), nil), (alice, "cv_" + String(repeating: "a", count: 26))] {
            do {
                _ = try await kernel.resolver.resolveGesture(gesture.id, canvasID: canvas, for: context, access: .read)
                Issue.record("resolved for the wrong caller")
            } catch let error as KernelError {
                #expect(error == KernelError.notFound("gesture"))
            }
        }
        do {
            _ = try await kernel.resolver.resolveGesture(gesture.id, canvasID: nil, for: StoreFixture.context(scopes: ["chat:read"]), access: .read)
            Issue.record("resolved without the canvas scope")
        } catch let error as KernelError {
            #expect(error.kind == .forbidden)
        }
    }
}
