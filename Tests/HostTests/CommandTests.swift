import Foundation
@testable import NorthstarHost
import Testing

/// Commands: one winner per base_rev, idempotency, history against a model.
@Suite struct CommandTests {
    private func command(_ id: String, base: Int64, _ ops: String, limits: CommandLimits = CommandLimits()) throws -> CanvasCommand {
        try CanvasCommand(json: .object(["command_id": .string(id), "base_rev": .number(Double(base)),
                                         "ops": try JSONValue.parse(ops)]), limits: limits)
    }

    @Test("many concurrent commands on one base_rev: exactly one wins, the rest conflict, nothing gaps")
    func oneWinnerPerRevision() async throws {
        let fixture = try StoreFixture()
        let kernel = fixture.kernel
        let context = StoreFixture.context()
        let canvas = try await kernel.canvases.create(try CreateResourceRequest(json: .object([:])), context: context)
        let results = await withTaskGroup(of: String.self) { group in
            for index in 0..<40 {
                group.addTask {
                    do {
                        let result = try await kernel.canvases.commit(
                            try command("c\(index)", base: 0, #"[{"op":"add","path":"/w","value":\#(index)}]"#),
                            canvasID: canvas.id, context: context)
                        return "rev\(result.revision.rev)"
                    } catch let error as KernelError {
                        return error.code
                    } catch {
                        return "\(error)"
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.filter { $0 == "rev1" }.count == 1)
        #expect(results.filter { $0 == "rev_conflict" }.count == 39)
        let events = try await fixture.store.events(stream: canvas.stream, after: 0, limit: 100)
        #expect(events.events.map(\.seq) == [1])
        #expect(try await fixture.store.revisions(canvas: canvas.id, after: 0, limit: 100).map(\.rev) == [1])
    }

    @Test("a repeated command_id returns the first outcome, even after later commits; another body is refused")
    func idempotentCommands() async throws {
        let fixture = try StoreFixture()
        let kernel = fixture.kernel
        let context = StoreFixture.context()
        let canvas = try await kernel.canvases.create(try CreateResourceRequest(json: .object([:])), context: context)
        let first = try await kernel.canvases.commit(try command("a", base: 0, #"[{"op":"add","path":"/a","value":1}]"#), canvasID: canvas.id, context: context)
        _ = try await kernel.canvases.commit(try command("b", base: 1, #"[{"op":"add","path":"/b","value":2}]"#), canvasID: canvas.id, context: context)
        let again = try await kernel.canvases.commit(try command("a", base: 0, #"[{"op":"add","path":"/a","value":1}]"#), canvasID: canvas.id, context: context)
        #expect(again.replayed && again.revision == first.revision)
        await #expect(throws: KernelError.self) {
            _ = try await kernel.canvases.commit(try command("a", base: 0, #"[{"op":"add","path":"/a","value":9}]"#), canvasID: canvas.id, context: context)
        }
        #expect(try await fixture.store.head(canvas: canvas.id).rev == 2)
    }

    @Test("refused commands change nothing: failing test, missing path, ahead, over the limits")
    func refusalsChangeNothing() async throws {
        let fixture = try StoreFixture()
        let kernel = fixture.kernel
        let context = StoreFixture.context()
        let canvas = try await kernel.canvases.create(try CreateResourceRequest(json: .object([:])), context: context)
        _ = try await kernel.canvases.commit(try command("a", base: 0, #"[{"op":"add","path":"/a","value":1}]"#), canvasID: canvas.id, context: context)
        let refused: [(String, Int64, String, String)] = [
            ("t", 1, #"[{"op":"add","path":"/x","value":1},{"op":"test","path":"/a","value":2}]"#, "patch_failed"),
            ("m", 1, #"[{"op":"remove","path":"/missing"}]"#, "patch_failed"),
            ("h", 5, #"[{"op":"add","path":"/x","value":1}]"#, "base_rev_ahead"),
            ("s", 1, #"[{"op":"add","path":"/big","value":"\#(String(repeating: "x", count: 5000))"}]"#, "document_too_large"),
        ]
        for (id, base, ops, code) in refused {
            do {
                _ = try await kernel.canvases.commit(try command(id, base: base, ops), canvasID: canvas.id, context: context)
                Issue.record("\(id) was accepted")
            } catch let error as KernelError {
                #expect(error.code == code)
            }
        }
        let head = try await fixture.store.head(canvas: canvas.id)
        #expect(head.rev == 1 && head.document == .object(["a": .number(1)]))
        #expect(try await fixture.store.events(stream: canvas.stream, after: 0, limit: 10).headSeq == 1)
        // Parse-time limits.
        let tight = CommandLimits(maxDocumentBytes: 100, maxOperations: 2, maxPathDepth: 2)
        #expect(throws: KernelError.self) { try command("o", base: 1, #"[{"op":"add","path":"/a","value":1},{"op":"add","path":"/b","value":1},{"op":"add","path":"/c","value":1}]"#, limits: tight) }
        #expect(throws: KernelError.self) { try command("d", base: 1, #"[{"op":"add","path":"/a/b/c","value":1}]"#, limits: tight) }
        #expect(throws: KernelError.self) { try CanvasCommand(json: try JSONValue.parse(#"{"base_rev":0,"ops":[]}"#), limits: tight) }
        #expect(throws: KernelError.self) { try CanvasCommand(json: try JSONValue.parse(#"{"command_id":"x","base_rev":-1,"ops":[]}"#), limits: tight) }
        #expect(throws: KernelError.self) { try CanvasCommand(json: try JSONValue.parse(#"{"command_id":"x","base_rev":"1","ops":[]}"#), limits: tight) }
    }

    @Test("commands that would stack a document past the depth limit are refused, and the canvas lives on")
    func documentDepthIsCheckedOnTheResult() async throws {
        let fixture = try StoreFixture()
        let kernel = fixture.kernel
        let context = StoreFixture.context()
        let canvas = try await kernel.canvases.create(try CreateResourceRequest(json: .object([:])), context: context)
        func nested(_ levels: Int) -> String { String(repeating: "[", count: levels) + "1" + String(repeating: "]", count: levels) }
        // Each command alone is within every parse-time limit.
        _ = try await kernel.canvases.commit(try command("c1", base: 0, #"[{"op":"add","path":"/a","value":\#(nested(40))}]"#),
                                             canvasID: canvas.id, context: context)
        do {
            _ = try await kernel.canvases.commit(try command("c2", base: 1, #"[{"op":"add","path":"/a/0/0/0/0/0/0","value":\#(nested(60))}]"#),
                                                 canvasID: canvas.id, context: context)
            Issue.record("a document 68 levels deep was stored")
        } catch let error as KernelError {
            #expect(error.code == "document_too_deep" && error.kind == .unprocessable)
        }
        let head = try await fixture.store.head(canvas: canvas.id)
        #expect(head.rev == 1 && head.document.depth == 41)
        // The canvas still takes commands and reads back.
        let next = try await kernel.canvases.commit(try command("c3", base: 1, #"[{"op":"add","path":"/b","value":true}]"#),
                                                    canvasID: canvas.id, context: context)
        #expect(next.revision.rev == 2)
        #expect(try await kernel.canvases.document(canvasID: canvas.id, rev: 2, context: context).document.objectValue?["b"] == .bool(true))
    }

    @Test("in one group-committed batch, a failing command rolls back alone")
    func failuresInABatchStayAlone() async throws {
        let fixture = try StoreFixture()
        let kernel = fixture.kernel
        let context = StoreFixture.context()
        var canvases: [Resource] = []
        for _ in 0..<20 { canvases.append(try await kernel.canvases.create(try CreateResourceRequest(json: .object([:])), context: context)) }
        let outcomes = await withTaskGroup(of: (Int, Bool).self) { group in
            for (index, canvas) in canvases.enumerated() {
                group.addTask {
                    // Odd canvases get a command whose test op fails after an add.
                    let ops = index % 2 == 0 ? #"[{"op":"add","path":"/ok","value":1}]"#
                        : #"[{"op":"add","path":"/ok","value":1},{"op":"test","path":"/ok","value":2}]"#
                    let committed = (try? await kernel.canvases.commit(try command("c", base: 0, ops), canvasID: canvas.id, context: context)) != nil
                    return (index, committed)
                }
            }
            return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        for (index, canvas) in canvases.enumerated() {
            #expect(outcomes[index] == (index % 2 == 0))
            let head = try await fixture.store.head(canvas: canvas.id)
            #expect(head.rev == (index % 2 == 0 ? 1 : 0))
            #expect(head.document == (index % 2 == 0 ? .object(["ok": .number(1)]) : .object([:])))
            #expect(try await fixture.store.events(stream: canvas.stream, after: 0, limit: 5).headSeq == (index % 2 == 0 ? 1 : 0))
        }
    }

    @Test("every revision of a long random command sequence reads back as the model had it")
    func historyMatchesModel() async throws {
        let fixture = try StoreFixture()  // snapshot every 4 revisions
        let kernel = fixture.kernel
        let context = StoreFixture.context()
        let canvas = try await kernel.canvases.create(try CreateResourceRequest(json: .object([:])), context: context)
        var generator = SeededGenerator(seed: 7)
        var model: [JSONValue] = [.object([:])]
        for rev in 1...120 {
            let current = model.last!
            let keys = current.objectValue?.keys.sorted() ?? []
            let ops: String
            switch (Int(generator.next() % 4), keys.randomElement(using: &generator)) {
            case (0, let key?): ops = #"[{"op":"remove","path":"/\#(key)"}]"#
            case (1, let key?): ops = #"[{"op":"replace","path":"/\#(key)","value":[\#(rev)]}]"#
            case (2, let key?): ops = #"[{"op":"copy","from":"/\#(key)","path":"/k\#(rev)"}]"#
            default: ops = #"[{"op":"add","path":"/k\#(rev % 17)","value":{"n":\#(rev)}}]"#
            }
            let parsed = try command("r\(rev)", base: Int64(rev - 1), ops)
            model.append(try parsed.patch.apply(to: current))
            let result = try await kernel.canvases.commit(parsed, canvasID: canvas.id, context: context)
            #expect(result.revision.rev == Int64(rev))
        }
        for rev in 0...120 {
            let state = try await kernel.canvases.document(canvasID: canvas.id, rev: Int64(rev), context: context)
            #expect(state.document == model[rev], "rev \(rev)")
        }
        let events = try await fixture.store.events(stream: canvas.stream, after: 0, limit: 1000)
        #expect(events.events.map(\.seq) == Array(1...120))
    }
}

/// A small deterministic generator, so a failing sequence can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state >> 17 ^ state
    }
}
