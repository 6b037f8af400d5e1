import Hummingbird

/// `/v1/canvases`: create, read, read events. (Commands: CommandRoutes.)
struct CanvasRoutes {
    let api: APIRoutes

    func register(on router: Router<BasicRequestContext>) {
        let api = self.api
        let kernel = api.kernel
        router.post("/v1/canvases") { request, _ in
            let context = try await api.identify(request)
            let body = try CreateResourceRequest(json: try await api.json(request))
            let canvas = try await kernel.canvases.create(body, context: context)
            return jsonResponse(.created, canvas.json(extra: ["head_rev": .number(0), "document": .object([:])]))
        }
        router.get("/v1/canvases/:canvas_id") { request, routeContext in
            let context = try await api.identify(request)
            let id = try routeContext.parameters.require("canvas_id")
            let canvas = try await kernel.resolver.resolve(.canvas, id: id, for: context, access: .read)
            return jsonResponse(.ok, canvas.json(extra: ["head_rev": .number(Double(canvas.headRev)), "document": .object([:])]))
        }
        router.get("/v1/canvases/:canvas_id/events") { request, routeContext in
            try await events(.canvas, id: routeContext.parameters.require("canvas_id"), request: request, api: api)
        }
    }
}
