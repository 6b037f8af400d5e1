import Foundation
import Hummingbird

/// `/v1/canvases/{canvas_id}/gestures`: start, list, read, append samples, end.
struct GestureRoutes {
    let api: APIRoutes

    func register(on router: Router<NorthstarRequestContext>) {
        let api = self.api
        let gestures = api.kernel.gestures
        router.post("/v1/canvases/:canvas_id/gestures") { request, routeContext in
            try await api.run("gesture.start", target: try routeContext.parameters.require("canvas_id"), optionalBody: true, request: request)
        }
        router.get("/v1/canvases/:canvas_id/gestures") { request, routeContext in
            let context = try await api.identify(request)
            let limit = try api.unsigned(request, "limit", default: 100, max: 1000)
            guard limit > 0 else { throw KernelError.invalid("invalid_limit", "limit must be from 1 to 1000") }
            let after = request.uri.queryParameters["after"].map(String.init)
            let list = try await gestures.list(canvasID: try routeContext.parameters.require("canvas_id"), after: after,
                                               limit: Int(limit), context: context)
            return jsonResponse(.ok, .object(["gestures": .array(list.map(\.json)), "next_after": list.last.map { .string($0.id) } ?? .null]))
        }
        router.get("/v1/canvases/:canvas_id/gestures/:gesture_id") { request, routeContext in
            let context = try await api.identify(request)
            let gesture = try await api.kernel.resolver.resolveGesture(try routeContext.parameters.require("gesture_id"),
                                                                       canvasID: try routeContext.parameters.require("canvas_id"),
                                                                       for: context, access: .read)
            return jsonResponse(.ok, gesture.json)
        }
        router.post("/v1/canvases/:canvas_id/gestures/:gesture_id/samples") { request, routeContext in
            try await api.run("gesture.append", target: try routeContext.parameters.require("gesture_id"),
                              canvasID: try routeContext.parameters.require("canvas_id"), request: request)
        }
        router.post("/v1/canvases/:canvas_id/gestures/:gesture_id/end") { request, routeContext in
            try await api.run("gesture.end", target: try routeContext.parameters.require("gesture_id"),
                              canvasID: try routeContext.parameters.require("canvas_id"), optionalBody: true, request: request)
        }
    }
}
