import ArgumentParser
import Foundation
import Logging
import Metrics
import NIOPosix
import NorthstarHost

/// `northstar serve`: run a node until SIGTERM or SIGINT.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the server.",
        discussion: """
        With no --config, runs the embedded dev default (Deploy/northstar.dev.json): SQLite and \
        generated secrets under --data-dir (default .northstar), JWT dev auth, 127.0.0.1:8080. \
        Every plugin is loaded and checked before the port is bound; any refusal exits non-zero \
        with the file, the rule broken and what to do.
        """
    )

    @OptionGroup var options: NodeOptions

    @Option(name: .long, help: "Address to listen on, HOST:PORT (port 0 picks a free one).")
    var listen: String?

    func run() async throws {
        let config = try options.load(listen: listen)
        // Plugins may block in init (a key fetch): keep that off the async executor.
        let node = try await NIOThreadPool.singleton.runIfActive { try fail(on: { try Node(config: config) }) }
        // What libraries record through swift-metrics lands in the node's /metrics too.
        MetricsSystem.bootstrap(node.metrics.factory)
        do {
            try await node.run()
        } catch let error as StoreOpenError {
            // The cluster's database, found out of reach or newer at start.
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }
}

/// Options every command that reads a config shares.
struct NodeOptions: ParsableArguments {
    @Option(name: .long, help: "Config file (JSON). Default: the embedded dev default.")
    var config: String?

    @Option(name: .customLong("data-dir"), help: "Data directory (database, generated secrets).")
    var dataDir: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = ProcessInfo.processInfo.environment["NORTHSTAR_LOG_LEVEL"] ?? "info"

    @Option(name: .customLong("log-format"), help: "text or json (one object per line). Default: node.log_format, else text.")
    var logFormat: String? = ProcessInfo.processInfo.environment["NORTHSTAR_LOG_FORMAT"]

    /// Loads the config with command-line overrides, then sets up logging
    /// from both (a refused config is reported before any logger exists).
    func load(listen: String? = nil, env: String? = nil) throws -> NorthstarConfig {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level \"\(logLevel)\" is not trace, debug, info, notice, warning, error or critical")
        }
        var format: NorthstarConfig.LogFormat?
        if let logFormat {
            guard let chosen = NorthstarConfig.LogFormat(rawValue: logFormat) else {
                throw ValidationError("--log-format \"\(logFormat)\" is not text or json")
            }
            format = chosen
        }
        let loaded = try fail(on: {
            try NorthstarConfig.load(file: config, overrides: .init(listen: listen, dataDirectory: dataDir, env: env))
        })
        LogSetup.bootstrap(format: format ?? loaded.logFormat, level: level, levels: loaded.logLevels)
        return loaded
    }
}

/// Turns a configuration or plugin refusal into a one-line message and exit 2.
func fail<T>(on body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as ConfigError {
        FileHandle.standardError.write(Data("error: config \(error)\n".utf8))
        throw ExitCode(2)
    } catch let error as PluginLoadError {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(2)
    } catch let error as StoreOpenError {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(2)
    }
}
