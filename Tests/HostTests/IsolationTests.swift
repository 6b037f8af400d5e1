import Foundation
@testable import NorthstarHost
import Testing

/// The resolver: the same 404 for missing and foreign, 403 before any lookup.
@Suite struct IsolationTests {
    @Test("another tenant's and another env's ids are 404, exactly as a missing id")
    func foreignIsMissing() async throws {
        let fixture = try StoreFixture()
        let kernel = fixture.kernel
        let thread = try await kernel.threads.create(try CreateResourceRequest(json: .object([:])), context: StoreFixture.context())
        let missing = Identifier.make(prefix: "th_")
        var answers: [KernelError] = []
        for (context, id) in [(StoreFixture.context("t_beta"), thread.id), (StoreFixture.context(env: "staging"), thread.id),
                              (StoreFixture.context(), missing)] {
            do {
                _ = try await kernel.resolver.resolve(.thread, id: id, for: context, access: .read)
                Issue.record("resolved a foreign or missing thread")
            } catch let error as KernelError {
                answers.append(error)
            }
        }
        #expect(answers.count == 3)
        #expect(answers.allSatisfy { $0 == KernelError.notFound("thread") })
    }

    @Test("a read-only scope is 403 on writes, whether or not the resource exists")
    func scopes() async throws {
        let fixture = try StoreFixture()
        let kernel = fixture.kernel
        let thread = try await kernel.threads.create(try CreateResourceRequest(json: .object([:])), context: StoreFixture.context())
        let reader = StoreFixture.context(scopes: ["chat:read"])
        for id in [thread.id, Identifier.make(prefix: "th_")] {
            await #expect(throws: KernelError.forbidden("this credential lacks the chat:write scope")) {
                _ = try await kernel.threads.post(try fixture.message("x"), threadID: id, context: reader)
            }
        }
        _ = try await kernel.resolver.resolve(.thread, id: thread.id, for: reader, access: .read)
    }

    @Test("a canvas id is not a thread id")
    func kindsDoNotMix() async throws {
        let fixture = try StoreFixture()
        let kernel = fixture.kernel
        let canvas = try await kernel.canvases.create(try CreateResourceRequest(json: .object([:])), context: StoreFixture.context())
        await #expect(throws: KernelError.self) {
            _ = try await kernel.resolver.resolve(.thread, id: canvas.id, for: StoreFixture.context(), access: .read)
        }
    }

    @Test("a thread read once is kept, and still answers only its own tenant and env")
    func threadRecordsKeepIsolation() async throws {
        let fixture = try StoreFixture()
        let kernel = fixture.kernel
        let thread = try await kernel.threads.create(try CreateResourceRequest(json: .object([:])), context: StoreFixture.context())
        #expect(try await kernel.resolver.resolve(.thread, id: thread.id, for: StoreFixture.context(), access: .read) == thread)
        #expect(kernel.resolver.threadRecords.record(thread.id) == thread)
        for context in [StoreFixture.context("t_beta"), StoreFixture.context(env: "staging")] {
            await #expect(throws: KernelError.notFound("thread")) {
                _ = try await kernel.resolver.resolve(.thread, id: thread.id, for: context, access: .read)
            }
        }
        // A missing id is not kept: made later (on this node or another), it is found.
        let missing = Identifier.make(prefix: "th_")
        await #expect(throws: KernelError.notFound("thread")) {
            _ = try await kernel.resolver.resolve(.thread, id: missing, for: StoreFixture.context(), access: .read)
        }
        #expect(kernel.resolver.threadRecords.record(missing) == nil)
    }

    @Test("a canvas is read every time: its head_rev follows the commands")
    func canvasesAreNotKept() async throws {
        let fixture = try StoreFixture()
        let kernel = fixture.kernel
        let context = StoreFixture.context()
        let canvas = try await kernel.canvases.create(try CreateResourceRequest(json: .object([:])), context: context)
        #expect(try await kernel.resolver.resolve(.canvas, id: canvas.id, for: context, access: .read).headRev == 0)
        let ops = try JSONValue.parse(#"[{"op":"add","path":"/a","value":1}]"#)
        let command = try CanvasCommand(json: .object(["command_id": .string("c1"), "base_rev": .number(0), "ops": ops]),
                                         limits: CommandLimits())
        _ = try await kernel.canvases.commit(command, canvasID: canvas.id, context: context)
        #expect(try await kernel.resolver.resolve(.canvas, id: canvas.id, for: context, access: .read).headRev == 1)
        #expect(kernel.resolver.threadRecords.count == 0)
    }

    @Test("the thread records kept are bounded")
    func threadRecordsAreBounded() {
        let records = ThreadRecords(capacity: 3)
        let threads = (0..<10).map { index in
            Resource(id: Identifier.make(prefix: "th_"), kind: .thread, tenant: "t_alpha", env: "dev", createdBy: "u",
                     createdAt: .nowToTheMillisecond, title: "\(index)", metadata: .object([:]), headRev: 0)
        }
        threads.forEach(records.keep)
        #expect(records.count == 3)
        #expect(records.record(threads[9].id) == threads[9])
    }
}
