import Foundation
import Hummingbird
import Logging

/// Serves the browser client (`clients/js/`) when `node.client_dir` names
/// it: the module at `/client/northstar.js`, its types, and the demo page at
/// `/demo`, which loads the module from the same node so it needs no CORS.
/// Only these files are served, read from disk at each request: no path
/// from the URL ever reaches the file system.
struct ClientRoutes {
    let directory: String

    /// URL path → (file under the directory, content type).
    static let files: [(path: String, file: String, type: String)] = [
        ("/client/northstar.js", "northstar.js", "text/javascript; charset=utf-8"),
        ("/client/northstar.d.ts", "northstar.d.ts", "text/plain; charset=utf-8"),
    ] + ["canvas", "chat", "client", "errors", "graft", "ids", "inbox", "json-patch", "subscription"].map {
        ("/client/lib/\($0).js", "lib/\($0).js", "text/javascript; charset=utf-8")
    } + [
        ("/demo", "demo/index.html", "text/html; charset=utf-8"),
    ]

    /// Mounts the routes when the directory holds the client; logs why not otherwise.
    func register(on router: Router<some Hummingbird.RequestContext>, logger: Logger) {
        guard FileManager.default.fileExists(atPath: directory + "/northstar.js") else {
            logger.warning("the browser client is not served: node.client_dir has no northstar.js",
                           metadata: ["client_dir": "\(directory)"])
            return
        }
        for entry in Self.files {
            let file = directory + "/" + entry.file
            router.get(RouterPath(entry.path)) { _, _ in
                guard let bytes = FileManager.default.contents(atPath: file) else {
                    throw KernelError(.notFound, code: "not_found", message: "\(entry.file) is missing from node.client_dir")
                }
                return Response(status: .ok, headers: [.contentType: entry.type, .cacheControl: "no-cache"],
                                body: .init(byteBuffer: ByteBuffer(data: bytes)))
            }
        }
        logger.info("browser client served", metadata: ["client_dir": "\(directory)", "demo": "/demo"])
    }
}
