import Foundation

/// A `northstar serve` started for a transport's conformance checks, in a
/// folder of its own: the dev JWT auth and the plugin under test, on an
/// OS-picked port of 127.0.0.1.
final class NodeProcess: @unchecked Sendable {
    static let drainDeadlineSeconds = 3
    /// `limits.max_connections_per_user` on the node.
    static let connectionsPerUser = 3
    /// `limits.max_connections_per_tenant` on the node: above what any one
    /// user of a check holds, so only the tenant's own check reaches it.
    static let connectionsPerTenant = 6

    let port: Int
    private let process: Process
    private let executable: String
    private let configPath: String
    private let dataDirectory: String
    private let logPath: String

    private init(port: Int, process: Process, executable: String, configPath: String, dataDirectory: String, logPath: String) {
        self.port = port
        self.process = process
        self.executable = executable
        self.configPath = configPath
        self.dataDirectory = dataDirectory
        self.logPath = logPath
    }

    static func start(executable: String, folder: URL, plugin: String, name: String, config: JSONValue) throws -> NodeProcess {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let configURL = folder.appendingPathComponent("config.json")
        let document: JSONValue = .object([
            "node": .object(["drain_deadline_seconds": .number(Double(drainDeadlineSeconds))]),
            // Low, so the checks can reach it: each of them holds one connection at a time.
            "limits": .object(["max_connections_per_user": .number(Double(connectionsPerUser)),
                               "max_connections_per_tenant": .number(Double(connectionsPerTenant))]),
            // No leeway: the checks' expired credential is expired (by 2 s).
            "auth": .object(["chain": .array([.string("jwt")]), "expiry_leeway_seconds": .number(0)]),
            "plugins": .array([
                .object(["name": .string("jwt"), "path": .string("libNorthstarJWT.so"), "config": .object([
                    "dev_secret_file": .string("${data_dir}/jwt-dev-secret"), "issuer": .string("northstar-dev"),
                    "audience": .string("northstar"), "leeway_seconds": .number(0)])]),
                .object(["name": .string(name), "path": .string(plugin), "config": config]),
            ]),
        ])
        try Data(document.jsonText.utf8).write(to: configURL)
        let data = folder.appendingPathComponent("data").path
        let log = folder.appendingPathComponent("server.log").path
        guard FileManager.default.createFile(atPath: log, contents: nil) else {
            throw ContractBroken("cannot create the node's log file \(log)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["serve", "--config", configURL.path, "--listen", "127.0.0.1:0", "--data-dir", data]
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let match = text.firstMatch(of: /port=(\d+) .*listening/), let port = Int(match.1) {
                return NodeProcess(port: port, process: process, executable: executable, configPath: configURL.path,
                                   dataDirectory: data, logPath: log)
            }
            if !process.isRunning {
                throw ContractBroken("the node exited (\(process.terminationStatus)) before listening:\n\(text.suffix(2000))")
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        process.terminate()
        throw ContractBroken("the node did not start within 30 s")
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// The routes `name` mounted, as the log names them ("GET /x/{id}").
    func routes(of name: String) -> [String] {
        log.split(separator: "\n").compactMap { line -> String? in
            guard line.contains("plugin=\(name) route="), line.contains("route mounted"),
                  let match = line.firstMatch(of: /route=(GET [^ ]+)/) else { return nil }
            return String(match.1)
        }
    }

    /// A dev token from `northstar token` against this node's config.
    func token(tenant: String, user: String = "u_conformance", env: String? = nil, ttl: Int = 3600) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["token", "--config", configPath, "--data-dir", dataDirectory, "--tenant", tenant,
                             "--user", user, "--ttl", "\(ttl)"] + (env.map { ["--env", $0] } ?? [])
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ContractBroken("northstar token failed") }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Transport exchanges not finished yet, from `/metrics`.
    func openExchanges(_ http: RawHTTP) throws -> Int {
        try gauge("northstar_transport_exchanges_open", http)
    }

    /// Transport connections counted for their users now (principals not released).
    func userConnections(_ http: RawHTTP) throws -> Int {
        try gauge("northstar_user_connections", http)
    }

    private func gauge(_ name: String, _ http: RawHTTP) throws -> Int {
        let metrics = try http.send("GET", "/metrics").body
        let line = metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }
        guard let line, let value = Double(line.dropFirst(name.count + 1)) else {
            throw ContractBroken("/metrics has no \(name)")
        }
        return Int(value)
    }

    /// SIGTERM, then waits; true when the node exited within `limit`.
    func stop(within limit: Duration) async throws -> Bool {
        Foundation.kill(process.processIdentifier, SIGTERM)
        let deadline = ContinuousClock.now + limit
        while process.isRunning, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        return !process.isRunning
    }

    func kill() {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
    }
}
