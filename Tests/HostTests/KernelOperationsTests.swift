import Foundation
@testable import NorthstarHost
import Testing

/// What transports ask of the kernel through `kernel_call`: the REST writes, same answers.
@Suite struct KernelOperationsTests {
    @Test("chat.post and canvas.command answer as REST does, errors included")
    func operations() async throws {
        let fixture = try StoreFixture()
        let kernel = fixture.kernel
        let owner = StoreFixture.context()
        let thread = try await kernel.threads.create(try CreateResourceRequest(json: .object([:])), context: owner)
        let canvas = try await kernel.canvases.create(try CreateResourceRequest(json: .object([:])), context: owner)

        let (posted, answer) = await KernelOperations.perform("chat.post", target: thread.id, body: Array(#"{"text":"hi"}"#.utf8),
                                                              kernel: kernel, context: owner)
        #expect(posted == 201)
        #expect(try JSONValue.parse(answer).value(atPointer: "/event/seq") == .number(1))

        let command = #"{"command_id":"c1","base_rev":0,"ops":[{"op":"add","path":"/a","value":1}]}"#
        let (committed, result) = await KernelOperations.perform("canvas.command", target: canvas.id, body: Array(command.utf8),
                                                                 kernel: kernel, context: owner)
        let rev = try JSONValue.parse(result).value(atPointer: "/rev")
        #expect(committed == 201 && rev == .number(1))
        let (conflict, body) = await KernelOperations.perform("canvas.command", target: canvas.id,
                                                              body: Array(command.replacingOccurrences(of: "c1", with: "c2").utf8),
                                                              kernel: kernel, context: owner)
        let code = try JSONValue.parse(body).value(atPointer: "/error/code")
        #expect(conflict == 409 && code == .string("rev_conflict"))

        let stranger = StoreFixture.context("t_beta")
        let (foreign, _) = await KernelOperations.perform("chat.post", target: thread.id, body: Array(#"{"text":"x"}"#.utf8),
                                                          kernel: kernel, context: stranger)
        #expect(foreign == 404)
        let (unknown, _) = await KernelOperations.perform("chat.delete", target: thread.id, body: Array("{}".utf8), kernel: kernel, context: owner)
        #expect(unknown == 400)
        let (badJSON, _) = await KernelOperations.perform("chat.post", target: thread.id, body: Array("{".utf8), kernel: kernel, context: owner)
        #expect(badJSON == 400)
        let (anonymous, _) = await KernelOperations.perform("chat.post", target: thread.id, body: Array("{}".utf8), kernel: kernel, context: nil)
        #expect(anonymous == 401)
        #expect(try await fixture.store.events(stream: thread.stream, after: 0, limit: 10).headSeq == 1)
    }
}
