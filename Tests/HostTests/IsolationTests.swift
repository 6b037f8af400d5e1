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
}
