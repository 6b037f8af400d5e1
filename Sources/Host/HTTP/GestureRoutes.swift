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
            let list = try await gestures.list(canvasID: try routeContext.parameters.require("canvas_id"), context: context)
            return jsonResponse(.ok, .object(["gestures": .array(list.map(\.json))]))
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
