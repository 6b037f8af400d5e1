import Foundation

/// The transport contract, checked against a real node: `northstar serve`
/// with the dev JWT auth and the transport under test, driven over sockets.
/// Each route it mounts is asked for a resource of one tenant without a
/// credential, with a forged, an expired and another env's credential, by
/// another tenant, and by its owner; then a client leaves mid-request; a
/// user holding the node's limit of connections is refused the next; and
/// the node is stopped with a request still open. The host's log and
/// `/metrics` tell whether the plugin ended every exchange and released
/// every principal itself.
struct TransportConformance {
    /// The `northstar` executable (its folder holds the jwt plugin).
    let executable: String
    let pluginPath: String
    let pluginName: String
    let pluginConfig: JSONValue

    func run() async -> [ConformanceCheck] {
        var run = ConformanceRun()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("northstar-conformance-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let node: NodeProcess
        do {
            node = try NodeProcess.start(executable: executable, folder: folder, plugin: pluginPath, name: pluginName,
                                         config: pluginConfig)
        } catch {
            return [.fail("the node starts with the plugin", "\(error)")]
        }
        defer { node.kill() }
        let http = RawHTTP(port: node.port)
        let routes = node.routes(of: pluginName)
        await run.check("the plugin mounts its routes") {
            try expect(!routes.isEmpty, "no route mounted in start (route_add)")
        }
        let alice: String, bob: String, expired: String, elsewhere: String
        do {
            alice = try node.token(tenant: "t_conformance_a")
            bob = try node.token(tenant: "t_conformance_b")
            expired = try node.token(tenant: "t_conformance_a", ttl: 1)
            elsewhere = try node.token(tenant: "t_conformance_a", env: "elsewhere")
        } catch {
            return run.checks + [.fail("credentials are minted for the checks", "\(error)")]
        }
        try? await Task.sleep(for: .seconds(2))  // the 1-second credential has expired
        for route in routes {
            guard let path = try? path(for: route, owner: alice, http: http) else {
                await run.check("\(route): a resource to ask for") { throw ContractBroken("could not create one for its placeholders") }
                continue
            }
            // A WebSocket endpoint answers a plain GET with 426: ask it with handshakes.
            let webSocket = (try? http.send("GET", path, headers: ["Authorization": "Bearer \(alice)"]).status) == 426
            let handshake = webSocket ? Self.handshakeHeaders : [:]
            let refusals: [(String, [String: String])] = [
                ("no credential", [:]),
                ("a forged credential", ["Authorization": "Bearer " + Self.forged(alice)]),
                ("an expired credential", ["Authorization": "Bearer \(expired)"]),
                ("a credential for another env", ["Authorization": "Bearer \(elsewhere)"]),
            ]
            for (what, headers) in refusals {
                await run.check("\(route) with \(what): 401") {
                    let answer = try http.send("GET", path, headers: headers.merging(handshake) { $1 })
                    try expect(answer.status == 401, "answered \(answer.status): \(answer.body.prefix(200))")
                }
            }
            if route.contains("{") {
                await run.check("\(route) for another tenant's resource: refused (403 or 404)") {
                    let answer = try http.send("GET", path, headers: ["Authorization": "Bearer \(bob)"].merging(handshake) { $1 })
                    try expect(answer.status == 403 || answer.status == 404, "answered \(answer.status): isolation broken or not checked")
                }
            }
            await run.check("\(route) for the owner: answered within 10 s") {
                let answer = try http.send("GET", path, headers: ["Authorization": "Bearer \(alice)"].merging(handshake) { $1 })
                try expect((200...299).contains(answer.status) || (webSocket && answer.status == 101),
                           "answered \(answer.status): \(answer.body.prefix(200))")
            }
            await run.check("\(route): a client that leaves is told, and the plugin ends its exchange") {
                let socket = try http.sendAndKeepOpen(path, headers: ["Authorization": "Bearer \(alice)"].merging(handshake) { $1 })
                try await Task.sleep(for: .milliseconds(300))
                close(socket)
                let deadline = ContinuousClock.now + .seconds(5)
                while try node.openExchanges(http) > 0, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(50))
                }
                try expect(try node.openExchanges(http) == 0, "an exchange is still open 5 s after its client left (on_exchange_closed must end it)")
            }
        }
        await run.check("every principal is released when its connection ends (none is counted once every client left)") {
            let deadline = ContinuousClock.now + .seconds(5)
            while try node.userConnections(http) > 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            let held = try node.userConnections(http)
            try expect(held == 0, "\(held) connections are still counted for their users 5 s after every client left: a principal "
                           + "not released (principal_release) keeps its user nearer to limits.max_connections_per_user, then refused")
        }
        await checkUserLimit(routes: routes, node: node, http: http, run: &run)
        await run.check("after SIGTERM the node stops, and the plugin ended its open requests itself") {
            let open = try routes.first.map { try http.sendAndKeepOpen(try path(for: $0, owner: alice, http: http),
                                                                          headers: ["Authorization": "Bearer \(alice)"]) }
            defer { open.map { _ = close($0) } }
            try await Task.sleep(for: .milliseconds(300))
            let stopped = try await node.stop(within: .seconds(NodeProcess.drainDeadlineSeconds + 10))
            try expect(stopped, "the node did not stop within \(NodeProcess.drainDeadlineSeconds + 10) s of SIGTERM")
            try expect(!node.log.contains("never ended its exchange"), "the host had to end an exchange at the drain deadline")
        }
        await run.check("no misuse of the exchange API was logged") {
            let misuses = node.log.split(separator: "\n").filter { $0.contains("plugin misused an exchange") || $0.contains("did not answer within") }
            try expect(misuses.isEmpty, misuses.prefix(3).joined(separator: "; "))
        }
        return run.checks
    }

    /// On each route that holds its connections open (a stream), a user
    /// holding the node's limit of them is refused the next with 429
    /// (`authenticate` answers NS_ERR_TOO_LARGE), and so is a user whose
    /// tenant's users together hold the tenant's limit (NS_ERR_TENANT_LIMIT
    /// to a 1.5 plugin); closing them gives the places back. A route whose
    /// requests are answered at once holds no connection, and is not checked.
    private func checkUserLimit(routes: [String], node: NodeProcess, http: RawHTTP, run: inout ConformanceRun) async {
        let limit = NodeProcess.connectionsPerUser
        if let carol = try? node.token(tenant: "t_conformance_limit") {
            await checkLimit("limits.max_connections_per_user (\(limit)) for one user", holders: Array(repeating: carol, count: limit),
                             refused: carol, remedy: "map NS_ERR_TOO_LARGE from authenticate to 429",
                             routes: routes, node: node, http: http, run: &run)
        }
        let tenantLimit = NodeProcess.connectionsPerTenant
        let users = (0...tenantLimit).compactMap { try? node.token(tenant: "t_conformance_tenant", user: "u\($0)") }
        if users.count == tenantLimit + 1 {
            await checkLimit("limits.max_connections_per_tenant (\(tenantLimit)) for one tenant's users together",
                             holders: Array(users.dropLast()), refused: users.last!,
                             remedy: "map NS_ERR_TENANT_LIMIT (ABI 1.5) from authenticate to 429 too_many_tenant_connections",
                             routes: routes, node: node, http: http, run: &run)
        }
    }

    /// On each route that holds its connections open, `holders` (one
    /// connection each, on a resource of the first's) fill a limit, and
    /// `refused` is then answered 429.
    private func checkLimit(_ limit: String, holders: [String], refused: String, remedy: String, routes: [String],
                            node: NodeProcess, http: RawHTTP, run: inout ConformanceRun) async {
        let owner = holders[0]
        for route in routes {
            guard let path = try? path(for: route, owner: owner, http: http),
                  let before = try? node.userConnections(http) else { continue }
            let webSocket = (try? http.send("GET", path, headers: ["Authorization": "Bearer \(owner)"]).status) == 426
            let headers = { (token: String) in ["Authorization": "Bearer \(token)"].merging(webSocket ? Self.handshakeHeaders : [:]) { $1 } }
            // That request's own connection (a stream, read to its head and left) is given back first.
            _ = await Self.waitUntil { (try? node.userConnections(http)) == before }
            let held = holders.compactMap { try? http.sendAndKeepOpen(path, headers: headers($0)) }
            var holds = await Self.waitUntil { (try? node.userConnections(http)) == before + holders.count }
            if holds {
                // Still held a moment later: a stream, not a request that ends by itself (a short replay).
                try? await Task.sleep(for: .milliseconds(500))
                holds = (try? node.userConnections(http)) == before + holders.count
            }
            if held.count == holders.count, holds {
                await run.check("\(route) past \(limit): 429") {
                    let answer = try http.send("GET", path, headers: headers(refused))
                    try expect(answer.status == 429, "answered \(answer.status): \(remedy). \(answer.body.prefix(200))")
                }
            }
            held.forEach { _ = close($0) }
            _ = await Self.waitUntil { (try? node.userConnections(http)) == before }
        }
    }

    /// Polls `condition` for up to 3 s; whether it came true.
    private static func waitUntil(_ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(3)
        while !condition() {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return true
    }

    /// The route's path with its placeholders filled: a thread (with one
    /// message) or a canvas the owner created, by the placeholder's name.
    private func path(for route: String, owner: String, http: RawHTTP) throws -> String {
        var segments: [String] = []
        for segment in route.split(separator: " ").last!.split(separator: "/") {
            guard segment.hasPrefix("{") else { segments.append(String(segment)); continue }
            if segment.contains("gesture") {
                segments.append(try gesture(owner: owner, http: http))
                continue
            }
            let (kind, field) = segment.contains("canvas") ? ("canvases", "canvas_id") : ("threads", "thread_id")
            let answer = try http.send("POST", "/v1/\(kind)", headers: ["Authorization": "Bearer \(owner)"], body: "{}")
            guard answer.status == 201, case .object(let created)? = try? JSONValue.parse(answer.body),
                  let id = created[field]?.stringValue else {
                throw ContractBroken("POST /v1/\(kind) answered \(answer.status)")
            }
            if kind == "threads" {
                // One event in it: a transport that waits for events (a long-poll) answers at once.
                _ = try http.send("POST", "/v1/threads/\(id)/messages", headers: ["Authorization": "Bearer \(owner)"],
                                  body: #"{"text":"conformance"}"#)
            }
            segments.append(id)
        }
        return "/" + segments.joined(separator: "/")
    }

    /// A finished two-sample gesture on a new canvas of `owner`'s.
    private func gesture(owner: String, http: RawHTTP) throws -> String {
        let auth = ["Authorization": "Bearer \(owner)"]
        func created(_ answer: RawHTTP.Answer, _ field: String) throws -> String {
            guard answer.status == 201 || answer.status == 200, case .object(let members)? = try? JSONValue.parse(answer.body),
                  let id = members[field]?.stringValue else { throw ContractBroken("creating a gesture answered \(answer.status)") }
            return id
        }
        let canvas = try created(try http.send("POST", "/v1/canvases", headers: auth, body: "{}"), "canvas_id")
        let gesture = try created(try http.send("POST", "/v1/canvases/\(canvas)/gestures", headers: auth, body: "{}"), "gesture_id")
        let samples = #"{"samples":[{"t_ms":0,"x":0,"y":0,"pointer":1,"phase":"down"},{"t_ms":20,"x":1,"y":1,"pointer":1,"phase":"up"}]}"#
        _ = try http.send("POST", "/v1/canvases/\(canvas)/gestures/\(gesture)/samples", headers: auth, body: samples)
        _ = try http.send("POST", "/v1/canvases/\(canvas)/gestures/\(gesture)/end", headers: auth, body: "{}")
        return gesture
    }

    /// What makes a GET a WebSocket handshake.
    static let handshakeHeaders = ["Upgrade": "websocket", "Connection": "Upgrade",
                                   "Sec-WebSocket-Key": "bm9ydGhzdGFyLWNoZWNrcw==", "Sec-WebSocket-Version": "13"]

    /// The token with its signature's last characters changed.
    static func forged(_ token: String) -> String {
        String(token.dropLast(4)) + (token.hasSuffix("AAAA") ? "BBBB" : "AAAA")
    }
}
