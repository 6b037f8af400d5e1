import Hummingbird

/// `GET /healthz` (the process answers), `GET /readyz` (every plugin has
/// started, the port is bound, and no shutdown is under way), and
/// `GET /metrics` (Prometheus text).
struct HealthRoutes {
    let readiness: Readiness
    let metrics: Metrics

    func register(on router: Router<some Hummingbird.RequestContext>) {
        router.get("/healthz") { _, _ in
            jsonResponse(.ok, #"{"status":"ok"}"#)
        }
        router.get("/readyz") { _, _ in
            let state = readiness.current
            return jsonResponse(state == .ready ? .ok : .serviceUnavailable, #"{"status":"\#(state.rawValue)"}"#)
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(string: metrics.render())))
        }
    }
}

/// A response with a JSON body.
func jsonResponse(_ status: HTTPResponse.Status, _ json: String) -> Response {
    Response(status: status, headers: [.contentType: "application/json"],
             body: .init(byteBuffer: ByteBuffer(string: json)))
}
