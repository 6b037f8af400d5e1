import Foundation
import NIOPosix

/// `northstar plugins test`: loads any plugin and checks the contract of its
/// kind against a real host, so a third party learns what its plugin breaks
/// before its users do.
public enum Conformance {
    /// What was tested, and each check's verdict.
    public struct Report: Sendable {
        public let library: PluginLibrary
        public let checks: [ConformanceCheck]
        public var passed: Bool { checks.allSatisfy(\.passed) }
    }

    /// Runs the checks for `file`'s kind.
    /// - Parameters:
    ///   - config: the plugin's own config section.
    ///   - executable: the `northstar` binary, for the node a transport is checked in.
    ///   - credential: for an auth plugin, a credential it must accept (`Bearer ...`).
    /// - Throws: `PluginLoadError` when the file does not load at all.
    public static func run(file: String, config: JSONValue, executable: String, credential: String?) async throws -> Report {
        let library = try PluginLoader.load(file)
        if library.kind == .transport {
            let checks = await TransportConformance(executable: executable, pluginPath: library.realPath,
                                                    pluginName: library.name, pluginConfig: config).run()
            return Report(library: library, checks: checks)
        }
        let instance = try PluginInstance.initialise(library, config: config)
        try await NIOThreadPool.singleton.runIfActive { try instance.start() }
        defer { instance.stop() }
        let checks: [ConformanceCheck]
        switch library.kind {
        case .storage:
            checks = await StorageConformance(backend: StorageBackend(plugin: instance, timeout: .seconds(10))).run()
        case .auth, .transport:
            checks = await AuthConformance(plugin: instance, validCredential: credential).run()
        }
        return Report(library: library, checks: checks)
    }
}
