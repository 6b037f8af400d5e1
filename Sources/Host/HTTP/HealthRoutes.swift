import Hummingbird

/// `GET /healthz` (the process answers), `GET /readyz` (every plugin has
/// started, the port is bound, no shutdown is under way, and the store takes
/// writes), and
/// `GET /metrics` (Prometheus text).
struct HealthRoutes {
    let readiness: Readiness
    let metrics: Metrics
    let storeHealth: StoreHealth
    /// `node.admin_token`: when set, `/metrics` needs it as a bearer token.
    let adminToken: String?

    func register(on router: Router<some Hummingbird.RequestContext>) {
        router.get("/healthz") { _, _ in
            jsonResponse(.ok, #"{"status":"ok"}"#)
        }
        router.get("/readyz") { _, _ in
            let state = readiness.current
            // A node whose store takes no writes should get no traffic, though it still serves reads.
            if state == .ready, let problem = storeHealth.current {
                return jsonResponse(.serviceUnavailable, #"{"status":"\#(problem.rawValue)"}"#)
            }
            return jsonResponse(state == .ready ? .ok : .serviceUnavailable, #"{"status":"\#(state.rawValue)"}"#)
        }
        router.get("/metrics") { request, _ in
            if let adminToken, !Self.presents(adminToken, request.headers[.authorization]) {
                throw KernelError.unauthenticated("/metrics needs the node's admin token (Authorization: Bearer <admin_token>)")
            }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(string: metrics.render())))
        }
    }
}

extension HealthRoutes {
    /// Whether `authorization` is `Bearer <token>`, compared in constant time.
    static func presents(_ token: String, _ authorization: String?) -> Bool {
        guard let authorization, authorization.hasPrefix("Bearer ") else { return false }
        let given = Array(authorization.utf8.dropFirst(7)), expected = Array(token.utf8)
        guard given.count == expected.count else { return false }
        return zip(given, expected).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// A response with a JSON body.
func jsonResponse(_ status: HTTPResponse.Status, _ json: String) -> Response {
    Response(status: status, headers: [.contentType: "application/json"],
             body: .init(byteBuffer: ByteBuffer(string: json)))
}
