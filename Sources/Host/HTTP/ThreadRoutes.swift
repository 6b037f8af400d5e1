import Foundation
import Hummingbird

/// `/v1/threads`: create, read, post messages, read events.
struct ThreadRoutes {
    let api: APIRoutes

    func register(on router: Router<NorthstarRequestContext>) {
        let api = self.api
        let kernel = api.kernel
        router.post("/v1/threads") { request, _ in
            try await api.run("thread.create", target: "", request: request)
        }
        router.get("/v1/threads/:thread_id") { request, routeContext in
            let context = try await api.identify(request)
            let id = try routeContext.parameters.require("thread_id")
            let thread = try await kernel.resolver.resolve(.thread, id: id, for: context, access: .read)
            let page = try await kernel.store.events(stream: thread.stream, after: 0, limit: 0)
            return jsonResponse(.ok, thread.json(extra: ["head_seq": .number(Double(page.headSeq))]))
        }
        router.post("/v1/threads/:thread_id/messages") { request, routeContext in
            try await api.run("chat.post", target: try routeContext.parameters.require("thread_id"), request: request)
        }
        router.get("/v1/threads/:thread_id/events") { request, routeContext in
            try await events(.thread, id: routeContext.parameters.require("thread_id"), request: request, api: api)
        }
    }
}

/// `GET .../events?after=SEQ&limit=N` for any resource kind.
func events(_ kind: ResourceKind, id: String, request: Request, api: APIRoutes) async throws -> Response {
    let context = try await api.identify(request)
    let after = try api.unsigned(request, "after", default: 0)
    let limit = try api.unsigned(request, "limit", default: 100, max: 1000)
    guard limit > 0 else { throw KernelError.invalid("invalid_limit", "limit must be from 1 to 1000") }
    let page = try await api.kernel.streams.events(kind, id: id, after: after, limit: Int(limit), context: context)
    return jsonResponse(.ok, page.json())
}
