import Foundation
import Hummingbird

/// `/v1/canvases/{canvas_id}/gestures`: start, list, read, append samples, end.
struct GestureRoutes {
    let api: APIRoutes

    func register(on router: Router<BasicRequestContext>) {
        let api = self.api
        let gestures = api.kernel.gestures
        router.post("/v1/canvases/:canvas_id/gestures") { request, routeContext in
            let context = try await api.identify(request)
            let canvasID = try routeContext.parameters.require("canvas_id")
            let body = try await Self.optionalJSON(request, api: api)
            return jsonResponse(.created, try await gestures.start(canvasID: canvasID, body: body, context: context).json)
        }
        router.get("/v1/canvases/:canvas_id/gestures") { request, routeContext in
            let context = try await api.identify(request)
            let list = try await gestures.list(canvasID: try routeContext.parameters.require("canvas_id"), context: context)
            return jsonResponse(.ok, .object(["gestures": .array(list.map(\.json))]))
        }
        router.get("/v1/canvases/:canvas_id/gestures/:gesture_id") { request, routeContext in
            let context = try await api.identify(request)
            let gesture = try await gestures.resolve(try routeContext.parameters.require("gesture_id"),
                                                     canvasID: try routeContext.parameters.require("canvas_id"), context: context, access: .read)
            return jsonResponse(.ok, gesture.json)
        }
        router.post("/v1/canvases/:canvas_id/gestures/:gesture_id/samples") { request, routeContext in
            let context = try await api.identify(request)
            let (gesture, event) = try await gestures.append(gestureID: try routeContext.parameters.require("gesture_id"),
                                                             canvasID: try routeContext.parameters.require("canvas_id"),
                                                             body: try await api.json(request), context: context)
            return jsonResponse(.ok, Self.appended(gesture, event))
        }
        router.post("/v1/canvases/:canvas_id/gestures/:gesture_id/end") { request, routeContext in
            let context = try await api.identify(request)
            let gesture = try await gestures.end(gestureID: try routeContext.parameters.require("gesture_id"),
                                                 canvasID: try routeContext.parameters.require("canvas_id"), context: context)
            return jsonResponse(.ok, gesture.json)
        }
    }

    /// The answer to an append: the gesture now, and the batch's `seq` in its stream.
    static func appended(_ gesture: Gesture, _ event: StreamEvent) -> JSONValue {
        .object(["gesture": gesture.json, "seq": .number(Double(event.seq))])
    }

    /// An empty body reads as `{}`.
    static func optionalJSON(_ request: Request, api: APIRoutes) async throws -> JSONValue {
        if request.headers[.contentLength] == "0" || (request.headers[.contentLength] == nil && request.headers[.transferEncoding] == nil) {
            return .object([:])
        }
        return try await api.json(request)
    }
}
