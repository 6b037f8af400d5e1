import Foundation
import Logging
import PluginAPI

/// Every plugin the config names: loaded, checked, initialised and started
/// in config order, stopped in reverse order.
public final class PluginSet: @unchecked Sendable {
    public let plugins: [PluginInstance]
    /// Plugins left out because they could not load (only `authOnly` leaves any out).
    public private(set) var skipped: [PluginLoadError] = []
    private let logger = Logger(label: "northstar.plugins")
    private var started: [PluginInstance] = []

    /// Loads, checks and initialises every plugin of `config`, refusing the
    /// whole set at the first problem. Nothing is started yet.
    public convenience init(config: NorthstarConfig) throws {
        try self.init(config: config, entries: config.plugins, kinds: Set(PluginKind.all))
    }

    /// Only what minting a token needs (`northstar token`): the auth plugins,
    /// initialised, and no code of other plugins run: entries named outside
    /// `auth.chain` are not even loaded. An entry that may be an auth plugin
    /// (the chain is empty, or it has no name) is loaded to learn its kind;
    /// if it cannot load it is left out (see `skipped`), so one broken
    /// storage plugin does not stop tokens from being minted.
    public static func authOnly(config: NorthstarConfig) throws -> PluginSet {
        let chain = config.auth.chain
        let entries = config.plugins.filter { entry in
            guard let name = entry.expectedName, !chain.isEmpty else { return true }
            return chain.contains(name)
        }
        return try PluginSet(config: config, entries: entries, kinds: [.auth], skippingUnloadable: true)
    }

    private init(config: NorthstarConfig, entries: [NorthstarConfig.PluginSettings], kinds: Set<PluginKind>,
                 skippingUnloadable: Bool = false) throws {
        let directory = config.pluginDirectory ?? PluginSet.defaultPluginDirectory()
        var libraries: [PluginLibrary] = []
        var loadedEntries: [NorthstarConfig.PluginSettings] = []
        for entry in entries {
            let path = entry.path.hasPrefix("/") ? entry.path : "\(directory)/\(entry.path)"
            let library: PluginLibrary
            do {
                library = try PluginLoader.load(path)
            } catch let error as PluginLoadError where skippingUnloadable {
                skipped.append(error)
                continue
            }
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
            for warning in library.warnings {
                logger.warning("plugin loaded with a problem: \(warning)", metadata: ["plugin": "\(library.name)", "file": "\(path)"])
            }
            libraries.append(library)
            loadedEntries.append(entry)
        }
        try PluginSet.checkChain(config.auth.chain, libraries: libraries, source: config.source)

        var instances: [PluginInstance] = []
        for (library, entry) in zip(libraries, loadedEntries) where kinds.contains(library.kind) {
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
        URL(fileURLWithPath: executablePath()).deletingLastPathComponent().path
    }

    /// The running executable's real path, however it was started (`argv[0]`
    /// is only a name when the shell found it on the PATH).
    public static func executablePath() -> String {
        let linked = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        if linked != "/proc/self/exe", FileManager.default.fileExists(atPath: linked) { return linked }
        return URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
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
