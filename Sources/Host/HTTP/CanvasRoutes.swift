import Hummingbird

/// `/v1/canvases`: create, read (any revision), commands, revisions, events.
struct CanvasRoutes {
    let api: APIRoutes

    func register(on router: Router<NorthstarRequestContext>) {
        let api = self.api
        let kernel = api.kernel
        router.post("/v1/canvases") { request, _ in
            try await api.run("canvas.create", target: "", request: request)
        }
        router.get("/v1/canvases/:canvas_id") { request, routeContext in
            let context = try await api.identify(request)
            let id = try routeContext.parameters.require("canvas_id")
            let rev = try request.uri.queryParameters["rev"].map { _ in Int64(try api.unsigned(request, "rev", default: 0, max: UInt64(Int64.max))) }
            let state = try await kernel.canvases.document(canvasID: id, rev: rev, context: context)
            return jsonResponse(.ok, state.resource.json(extra: [
                "rev": .number(Double(state.rev)), "head_rev": .number(Double(state.resource.headRev)), "document": state.document,
                "head_seq": .number(Double(state.headSeq)),
            ]))
        }
        router.post("/v1/canvases/:canvas_id/commands") { request, routeContext in
            try await api.run("canvas.command", target: try routeContext.parameters.require("canvas_id"), request: request)
        }
        router.get("/v1/canvases/:canvas_id/revisions") { request, routeContext in
            let context = try await api.identify(request)
            let id = try routeContext.parameters.require("canvas_id")
            let after = try api.unsigned(request, "after", default: 0, max: UInt64(Int64.max))
            let limit = try api.unsigned(request, "limit", default: 100, max: 1000)
            guard limit > 0 else { throw KernelError.invalid("invalid_limit", "limit must be from 1 to 1000") }
            let page = try await kernel.canvases.revisions(canvasID: id, after: Int64(after), limit: Int(limit), context: context)
            return jsonResponse(.ok, .object([
                "revisions": .array(page.revisions.map(\.json)), "head_rev": .number(Double(page.headRev)),
                "next_after": page.revisions.last.map { .number(Double($0.rev)) } ?? .null,
            ]))
        }
        router.get("/v1/canvases/:canvas_id/events") { request, routeContext in
            try await events(.canvas, id: routeContext.parameters.require("canvas_id"), request: request, api: api)
        }
    }
}
