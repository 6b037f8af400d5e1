import Foundation
import Hummingbird

/// `/console`: a status page for operators. The page is a static shell with
/// no data in it (no external assets); its script asks for the admin token
/// (kept in the tab's session storage, or given in the URL's fragment, which
/// never reaches the server) and polls `/console/status`, which answers only
/// a credential with the `admin` scope: 401 without one, 403 for any other.
struct ConsoleRoutes {
    let api: APIRoutes
    /// The node's state as JSON, made at each poll.
    let status: @Sendable () async -> JSONValue

    func register(on router: Router<some Hummingbird.RequestContext>) {
        router.get("/console") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                     body: .init(byteBuffer: ByteBuffer(string: ConsolePage.html)))
        }
        router.get("/console/status") { request, _ in
            let context = try await api.identify(request)
            guard context.scopes.contains("admin") else {
                throw KernelError(.forbidden, code: "admin_required", message: "the console needs a credential with the admin scope")
            }
            return jsonResponse(.ok, await status())
        }
    }
}
