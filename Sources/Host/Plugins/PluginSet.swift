import Foundation
import Logging
import PluginAPI

/// Every plugin the config names: loaded, checked, initialised and started
/// in config order, stopped in reverse order.
public final class PluginSet: @unchecked Sendable {
    public let plugins: [PluginInstance]
    private let logger = Logger(label: "northstar.plugins")
    private var started: [PluginInstance] = []

    /// Loads, checks and initialises every plugin of `config`, refusing the
    /// whole set at the first problem. Nothing is started yet.
    public init(config: NorthstarConfig) throws {
        let directory = config.pluginDirectory ?? PluginSet.defaultPluginDirectory()
        var libraries: [PluginLibrary] = []
        for entry in config.plugins {
            let path = entry.path.hasPrefix("/") ? entry.path : "\(directory)/\(entry.path)"
            let library = try PluginLoader.load(path)
            if let first = libraries.first(where: { $0.realPath == library.realPath }) {
                throw PluginLoadError(file: path, rule: .duplicateFile,
                                      message: "\(entry.keyPath) names the same file as \(first.file) (\(library.realPath))",
                                      remedy: "list each plugin file once")
            }
            if let first = libraries.first(where: { $0.name == library.name }) {
                throw PluginLoadError(file: path, rule: .duplicateName,
                                      message: "\(entry.keyPath) is a plugin named \"\(library.name)\", and so is \(first.file)",
                                      remedy: "keep one plugin of each name")
            }
            if let expected = entry.expectedName, expected != library.name {
                throw PluginLoadError(file: path, rule: .nameMismatch,
                                      message: "\(entry.keyPath).name says \"\(expected)\" but the plugin is \"\(library.name)\"",
                                      remedy: "correct the name, or the path")
            }
            libraries.append(library)
        }
        try PluginSet.checkChain(config.auth.chain, libraries: libraries, source: config.source)

        var instances: [PluginInstance] = []
        for (library, entry) in zip(libraries, config.plugins) {
            do {
                instances.append(try PluginInstance.initialise(library, config: entry.config))
            } catch {
                instances.reversed().forEach { $0.discard() }
                throw error
            }
        }
        plugins = instances
    }

    /// The auth chain must name loaded auth plugins.
    static func checkChain(_ chain: [String], libraries: [PluginLibrary], source: String) throws {
        for name in chain {
            guard let library = libraries.first(where: { $0.name == name }) else {
                throw PluginLoadError(file: source, rule: .authChain,
                                      message: "auth.chain names \"\(name)\", which no loaded plugin is",
                                      remedy: "add the plugin under \"plugins\" or remove it from auth.chain")
            }
            guard library.kind == .auth else {
                throw PluginLoadError(file: source, rule: .authChain,
                                      message: "auth.chain names \"\(name)\", which is a \(library.kind) plugin",
                                      remedy: "list only auth plugins in auth.chain")
            }
        }
    }

    /// Starts every plugin in config order; on a failure, stops those
    /// already started, in reverse, and throws.
    public func start() throws {
        for plugin in plugins {
            do {
                try plugin.start()
                started.append(plugin)
                logger.info("plugin started", metadata: ["plugin": "\(plugin.name)", "kind": "\(plugin.kind)",
                                                         "version": "\(plugin.library.version)"])
            } catch {
                let neverStarted = plugins.filter { candidate in !started.contains { $0 === candidate } }
                stop()
                neverStarted.reversed().forEach { $0.discard() }
                throw error
            }
        }
    }

    /// Stops started plugins in reverse start order. Idempotent.
    public func stop() {
        for plugin in started.reversed() {
            plugin.stop()
            logger.info("plugin stopped", metadata: ["plugin": "\(plugin.name)"])
        }
        started = []
    }

    /// Auth plugins in chain order (every auth plugin when the chain is empty).
    public func authChain(_ names: [String]) -> [PluginInstance] {
        let auth = plugins.filter { $0.kind == .auth }
        return names.isEmpty ? auth : names.compactMap { name in auth.first { $0.name == name } }
    }

    /// The folder of the running executable, where `swift build` puts plugins.
    public static func defaultPluginDirectory() -> String {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
    }
}

extension PluginSet {
    /// Destroys every initialised plugin without starting it (for `config check`).
    public func discardAll() {
        plugins.reversed().forEach { $0.discard() }
    }
}

extension PluginSet {
    /// Mints a credential with the first auth plugin of the chain that can.
    public func mint(claims: [String: String], ttlSeconds: Int64, chain: [String]) throws -> String {
        guard let minter = authChain(chain).first(where: { $0.canMint }) else {
            throw AuthPluginError(plugin: "-", status: 3, message: "no auth plugin in the chain can mint tokens (the jwt plugin can)")
        }
        return try minter.mint(claims: claims, ttlSeconds: ttlSeconds)
    }
}

extension PluginSet {
    /// The storage plugin named `name`, or the only one loaded when `name`
    /// is nil; nil when none is loaded.
    /// - Parameter role: how the name was given, for the message (`storage.backend`, `--from`).
    public func storagePlugin(named name: String?, source: String, role: String = "storage.backend") throws -> PluginInstance? {
        let storage = plugins.filter { $0.kind == .storage }
        if let name {
            guard let plugin = storage.first(where: { $0.name == name }) else {
                throw PluginLoadError(file: source, rule: .storageBackend,
                                      message: "\(role) names \"\(name)\", which no loaded storage plugin is",
                                      remedy: "add the storage plugin under \"plugins\", or name one that is (\(storage.map(\.name).joined(separator: ", ")))")
            }
            return plugin
        }
        guard storage.count <= 1 else {
            throw PluginLoadError(file: source, rule: .storageBackend,
                                  message: "\(storage.count) storage plugins are loaded (\(storage.map(\.name).joined(separator: ", "))) and storage.backend names none",
                                  remedy: "set storage.backend to the one that holds artifacts")
        }
        return storage.first
    }
}
