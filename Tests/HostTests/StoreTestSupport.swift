import Foundation
@testable import NorthstarHost

/// A store on a fresh SQLite file, and contexts for two tenants.
struct StoreFixture {
    let directory: URL
    let hub = StreamHub(queueLimit: 64)
    let store: SQLiteStore

    init(retain: Int64 = 0) throws {
        directory = try TestPaths.temporaryDirectory()
        let hub = self.hub
        store = try SQLiteStore(path: directory.appendingPathComponent("test.sqlite").path, retainPerStream: retain) { hub.publish($0) }
    }

    func reopen() throws -> SQLiteStore {
        try SQLiteStore(path: directory.appendingPathComponent("test.sqlite").path)
    }

    var kernel: Kernel {
        Kernel(store: store, hub: hub, auth: AuthChain(providers: [], env: "dev", anonymous: nil),
               commandLimits: CommandLimits(maxDocumentBytes: 4096, maxOperations: 10, maxPathDepth: 8, snapshotEvery: 4))
    }

    static func context(_ tenant: String = "t_alpha", env: String = "dev", scopes: Set<String> = ["read", "write"]) -> RequestContext {
        RequestContext(tenant: TenantID(tenant)!, env: env, userID: "user-\(tenant)", scopes: scopes,
                       requestID: "req_test", traceparent: TraceContext.traceparent(from: nil))
    }

    func message(_ text: String, id: String? = nil) throws -> PostMessageRequest {
        var body: [String: JSONValue] = ["text": .string(text)]
        if let id { body["client_message_id"] = .string(id) }
        return try PostMessageRequest(json: .object(body))
    }
}
