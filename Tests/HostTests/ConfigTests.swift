import Foundation
import NIOCore
@testable import NorthstarHost
import Testing

/// Config refusals name the file and the key path; overrides and secrets work.
@Suite struct ConfigTests {
    private func refusal(_ json: String, environment: [String: String] = [:]) -> ConfigError? {
        do {
            _ = try loadConfig(json, environment: environment)
            Issue.record("config loaded but should have been refused")
            return nil
        } catch let error as ConfigError {
            return error
        } catch {
            Issue.record("unexpected \(error)")
            return nil
        }
    }

    @Test("the embedded default is Deploy/northstar.dev.json, byte for byte")
    func embeddedDefaultMatchesDeploy() throws {
        let file = try String(contentsOf: TestPaths.root.appendingPathComponent("Deploy/northstar.dev.json"), encoding: .utf8)
        #expect(file == DevDefaultConfig.text)
        let config = try NorthstarConfig.load(file: nil, environment: [:])
        #expect(config.env == "dev")
        #expect(config.plugins.map(\.expectedName) == ["jwt", "sse", "ws", "fs"])
    }

    @Test("every number docs/configuration.md gives as a default of node, store, limits and storage is the one a config without the key gets")
    func documentedDefaultsAreTheLoadedOnes() throws {
        let config = try loadConfig("{}")
        let postgres = try loadConfig(#"{"store": {"backend": "postgres", "postgres_url": "postgres://northstar@127.0.0.1/northstar"}}"#)
        let limits = config.limits
        let seconds: (TimeAmount) -> Int64 = { $0.nanoseconds / 1_000_000_000 }
        let loaded: [String: Int64] = [
            "node.drain_seconds": Int64(config.drainSeconds),
            "node.drain_deadline_seconds": Int64(config.drainDeadlineSeconds),
            "store.retain_events_per_stream": config.store.retainEventsPerStream,
            "store.snapshot_every": config.store.snapshotEvery,
            "store.pool_size": Int64(postgres.store.postgres?.poolSize ?? 0),
            "limits.max_body_bytes": Int64(limits.maxBodyBytes),
            "limits.max_body_bytes_in_flight": Int64(limits.maxBodyBytesInFlight),
            "limits.max_document_bytes": Int64(limits.commands.maxDocumentBytes),
            "limits.max_operations_per_command": Int64(limits.commands.maxOperations),
            "limits.max_path_depth": Int64(limits.commands.maxPathDepth),
            "limits.max_document_depth": Int64(limits.commands.maxDocumentDepth),
            "limits.send_queue_bytes": Int64(limits.transports.sendQueueBytes),
            "limits.ws_max_message_bytes": Int64(limits.transports.maxMessageBytes),
            "limits.slow_consumer_grace_seconds": Int64(limits.transports.slowConsumerGraceSeconds),
            "limits.ws_ping_interval_seconds": Int64(limits.transports.pingIntervalSeconds),
            "limits.max_gesture_batch_samples": Int64(limits.gestures.maxBatchSamples),
            "limits.max_gesture_samples": Int64(limits.gestures.maxSamples),
            "limits.max_gesture_pointers": Int64(limits.gestures.maxPointers),
            "limits.max_gesture_duration_ms": Int64(limits.gestures.maxDurationMs),
            "limits.max_object_bytes": Int64(limits.maxObjectBytes),
            "limits.max_connections": Int64(limits.connections.maxConnections),
            "limits.max_pending_connections_per_ip": Int64(limits.connections.maxPendingPerAddress),
            "limits.max_connections_per_user": Int64(limits.connections.maxPerUser),
            "limits.max_connections_per_tenant": Int64(limits.connections.maxPerTenant),
            "limits.max_requests_in_progress_per_user": Int64(limits.connections.maxRequestsPerUser),
            "limits.max_requests_in_progress_per_tenant": Int64(limits.connections.maxRequestsPerTenant),
            "limits.writes_per_second_per_user": Int64(limits.writes.perUser),
            "limits.writes_per_second_per_tenant": Int64(limits.writes.perTenant),
            "limits.reads_per_second_per_user": Int64(limits.reads.perUser),
            "limits.reads_per_second_per_tenant": Int64(limits.reads.perTenant),
            "limits.auth_failures_per_second": Int64(limits.authFailuresPerSecond),
            "limits.ws_messages_per_second_per_user": Int64(limits.webSocketMessages.perUser),
            "limits.ws_messages_per_second_per_tenant": Int64(limits.webSocketMessages.perTenant),
            "limits.header_timeout_seconds": seconds(limits.connections.headerTimeout),
            "limits.idle_timeout_seconds": seconds(limits.connections.idleTimeout),
            "limits.body_timeout_seconds": seconds(limits.connections.bodyTimeout),
            "limits.max_request_line_bytes": Int64(limits.connections.maxRequestLineBytes),
            "limits.max_header_bytes": Int64(limits.connections.maxHeaderBytes),
            "storage.timeout_ms": Int64(config.storage.timeoutMilliseconds),
        ]
        // Rows such as | `max_body_bytes` | `1048576` | ... under "## `limits`".
        let document = try String(contentsOf: TestPaths.root.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        var section = "", documented: [String: Int64] = [:]
        for line in document.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("## ") { section = line.dropFirst(3).filter { $0 != "`" }; continue }
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard ["node", "store", "limits", "storage"].contains(section), cells.count >= 3,
                  cells[0].hasPrefix("`"), cells[1].hasPrefix("`"),
                  let number = Int64(cells[1].trimmingCharacters(in: CharacterSet(charactersIn: "`"))) else { continue }
            documented["\(section).\(cells[0].trimmingCharacters(in: CharacterSet(charactersIn: "`")))"] = number
        }
        #expect(documented.count >= 25, "the tables were not read: \(documented)")
        for (key, number) in documented.sorted(by: { $0.key < $1.key }) {
            #expect(loaded[key] == number, "\(key): the docs say \(number), a config without it gets \(loaded[key].map(String.init) ?? "nothing this test knows")")
        }
    }

    @Test("a relative data_dir is made absolute before any plugin sees ${data_dir}")
    func relativeDataDirectoryIsResolved() throws {
        let here = FileManager.default.currentDirectoryPath
        let config = try NorthstarConfig.load(file: nil, environment: [:])
        #expect(config.dataDirectory == "\(here)/.northstar")
        let fs = try #require(config.plugins.first { $0.expectedName == "fs" })
        #expect(fs.config == .object(["root": .string("\(here)/.northstar/objects"), "bucket": .string("northstar")]))

        let overridden = try NorthstarConfig.load(file: nil, overrides: .init(dataDirectory: "./var//data/."), environment: [:])
        #expect(overridden.dataDirectory == "\(here)/var/data")
        let absolute = try NorthstarConfig.load(file: nil, environment: ["NORTHSTAR_DATA_DIR": "/srv/northstar"])
        #expect(absolute.dataDirectory == "/srv/northstar")
    }

    @Test("the production example parses once its secrets are in the environment")
    func productionExampleParses() throws {
        let path = TestPaths.root.appendingPathComponent("Deploy/northstar.prod.json").path
        let config = try NorthstarConfig.load(file: path, environment: ["NORTHSTAR_JWT_HS256_SECRET": String(repeating: "k", count: 40),
                                                                        "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "secret"])
        #expect(config.env == "prod")
        #expect(config.auth.anonymous == nil)
        #expect(config.storage.backend == "s3")
        #expect(config.plugins.map(\.expectedName) == ["jwt", "apikey", "sse", "ws", "s3"])
    }

    @Test("an unknown key is refused with its key path")
    func unknownKey() {
        let error = refusal(#"{"node": {"env": "dev", "listn": "127.0.0.1:1"}}"#)
        #expect(error?.path == "node.listn")
        #expect(error?.message.contains("unknown key") == true)
        #expect(refusal(#"{"plugins": [{"path": "x.so", "confg": {}}]}"#)?.path == "plugins[0].confg")
    }

    @Test("a wrong type is refused with its key path")
    func wrongType() {
        #expect(refusal(#"{"limits": {"max_body_bytes": "big"}}"#)?.path == "limits.max_body_bytes")
        // Less room for bodies in flight than one body may take: none of the largest could ever be read.
        #expect(refusal(#"{"limits": {"max_body_bytes": 2048, "max_body_bytes_in_flight": 1024}}"#)?.path == "limits.max_body_bytes_in_flight")
        #expect(refusal(#"{"plugins": {"path": "x"}}"#)?.path == "plugins")
        #expect(refusal(#"{"store": {"retain_events_per_stream": 1.5}}"#)?.path == "store.retain_events_per_stream")
        #expect(refusal(#"{"node": {"listen": "nowhere"}}"#)?.path == "node.listen")
    }

    @Test("the slow-consumer grace is 1 to 3600 seconds, 60 unless set")
    func slowConsumerGrace() throws {
        #expect(refusal(#"{"limits": {"slow_consumer_grace_seconds": 0}}"#)?.path == "limits.slow_consumer_grace_seconds")
        #expect(refusal(#"{"limits": {"slow_consumer_grace_seconds": 3601}}"#)?.path == "limits.slow_consumer_grace_seconds")
        #expect(refusal(#"{"limits": {"slow_consumer_grace_seconds": "soon"}}"#)?.path == "limits.slow_consumer_grace_seconds")
        #expect(WebSocketLimits().slowConsumerGraceSeconds == 60)
    }

    @Test("request rates are 0 (off) to 1,000,000 a second; writes 100 per user and 2,000 per tenant, reads 200 and 5,000, WebSocket messages 200 and 5,000, auth failures 100 unless set")
    func requestRates() throws {
        for key in ["writes_per_second_per_user", "writes_per_second_per_tenant", "reads_per_second_per_user", "reads_per_second_per_tenant",
                    "ws_messages_per_second_per_user", "ws_messages_per_second_per_tenant", "auth_failures_per_second"] {
            #expect(refusal(#"{"limits": {"\#(key)": -1}}"#)?.path == "limits.\(key)")
            #expect(refusal(#"{"limits": {"\#(key)": 1000001}}"#)?.path == "limits.\(key)")
            #expect(refusal(#"{"limits": {"\#(key)": 2.5}}"#)?.path == "limits.\(key)")
            #expect(refusal(#"{"limits": {"\#(key)": "fast"}}"#)?.path == "limits.\(key)")
        }
        let off = try loadConfig(#"{"limits": {"writes_per_second_per_user": 0, "writes_per_second_per_tenant": 7}}"#)
        #expect(off.limits.writes.perUser == 0 && off.limits.writes.perTenant == 7)
        let defaults = try loadConfig("{}").limits
        #expect(defaults.writes == .init(perUser: 100, perTenant: 2000) && defaults.reads == .init(perUser: 200, perTenant: 5000))
        let reads = try loadConfig(#"{"limits": {"reads_per_second_per_user": 3}}"#).limits
        #expect(reads.reads == .init(perUser: 3, perTenant: 5000) && reads.writes == defaults.writes)
        #expect(defaults.authFailuresPerSecond == 100)
        #expect(defaults.webSocketMessages == .init(perUser: 200, perTenant: 5000))
        #expect(try loadConfig(#"{"limits": {"auth_failures_per_second": 0}}"#).limits.authFailuresPerSecond == 0)
    }

    @Test("requests in progress are 1 to 10,000,000; 128 per user and 2,500 per tenant unless set")
    func requestsInProgress() throws {
        for key in ["max_requests_in_progress_per_user", "max_requests_in_progress_per_tenant"] {
            for bad in ["0", "-1", "10000001", "2.5", #""many""#] {
                #expect(refusal(#"{"limits": {"\#(key)": \#(bad)}}"#)?.path == "limits.\(key)", "\(key): \(bad)")
            }
        }
        let defaults = try loadConfig("{}").limits.connections
        #expect(defaults.maxRequestsPerUser == 128 && defaults.maxRequestsPerTenant == 2500)
        let set = try loadConfig(#"{"limits": {"max_requests_in_progress_per_user": 3}}"#).limits.connections
        #expect(set.maxRequestsPerUser == 3 && set.maxRequestsPerTenant == 2500)
    }

    @Test("a missing required value is refused")
    func missingRequired() {
        #expect(refusal(#"{"plugins": [{"config": {}}]}"#)?.path == "plugins[0].path")
    }

    @Test("an unreadable or missing file and invalid JSON are refused with the file name")
    func unreadable() throws {
        #expect(throws: ConfigError.self) { try NorthstarConfig.load(file: "/nonexistent/northstar.json") }
        let directory = try TestPaths.temporaryDirectory()
        let file = directory.appendingPathComponent("broken.json")
        try "{ not json".write(to: file, atomically: true, encoding: .utf8)
        do {
            _ = try NorthstarConfig.load(file: file.path)
            Issue.record("invalid JSON loaded")
        } catch let error as ConfigError {
            #expect(error.file == file.path)
            #expect(error.message.contains("not valid JSON"))
        }
        // A path that exists but cannot be read as a file (root reads any
        // file whatever its mode, so a directory stands in for "unreadable").
        do {
            _ = try NorthstarConfig.load(file: directory.path)
            Issue.record("a directory loaded as a config")
        } catch let error as ConfigError {
            #expect(error.file == directory.path)
            #expect(error.message.contains("cannot be read"))
        }
    }

    @Test("secrets come from the environment, and a missing variable is an error")
    func environmentVariables() throws {
        let json = #"{"plugins": [{"path": "x.so", "config": {"secret": "${MY_SECRET}", "dir": "${data_dir}/keys"}}]}"#
        let config = try loadConfig(json, environment: ["MY_SECRET": "s3cret"])
        #expect(config.plugins[0].config.value(atPointer: "/secret") == .string("s3cret"))
        #expect(config.plugins[0].config.value(atPointer: "/dir")?.stringValue?.hasSuffix("/keys") == true)
        #expect(refusal(json)?.path == "plugins[0].config.secret")
    }

    @Test("command line beats environment beats file")
    func overrides() throws {
        let directory = try TestPaths.temporaryDirectory()
        let file = directory.appendingPathComponent("c.json")
        try #"{"node": {"listen": "127.0.0.1:1000", "env": "staging"}}"#.write(to: file, atomically: true, encoding: .utf8)
        let fromEnv = try NorthstarConfig.load(file: file.path, environment: ["NORTHSTAR_LISTEN": "127.0.0.1:2000"])
        #expect(fromEnv.listen.port == 2000)
        #expect(fromEnv.env == "staging")
        let fromFlag = try NorthstarConfig.load(file: file.path, overrides: .init(listen: "127.0.0.1:3000"),
                                                environment: ["NORTHSTAR_LISTEN": "127.0.0.1:2000"])
        #expect(fromFlag.listen.port == 3000)
    }

    @Test("an anonymous identity is refused in prod, and its tenant must match the pattern")
    func anonymous() {
        let prod = #"{"node": {"env": "prod"}, "auth": {"anonymous": {"tenant_id": "t_public", "user_id": "anon"}}}"#
        #expect(refusal(prod)?.message.contains("never allowed") == true)
        let badTenant = #"{"auth": {"anonymous": {"tenant_id": "public", "user_id": "anon"}}}"#
        #expect(refusal(badTenant)?.path == "auth.anonymous.tenant_id")
    }

    @Test("env names are checked")
    func envName() {
        #expect(refusal(#"{"node": {"env": "Prod!"}}"#)?.path == "node.env")
    }
}
