import Foundation
import NorthstarHost
import Testing

/// Where things are when tests run: the package root and the build folder
/// that holds the real plugins (`swift test` builds them beside the tests).
enum TestPaths {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static let binDirectory: URL = {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for candidate in [beside, beside.deletingLastPathComponent(), root.appendingPathComponent(".build/debug")]
        where FileManager.default.fileExists(atPath: candidate.appendingPathComponent("libNorthstarAPIKey.so").path) {
            return candidate
        }
        return root.appendingPathComponent(".build/debug")
    }()

    static func plugin(_ name: String) -> String { binDirectory.appendingPathComponent(name).path }

    /// A fresh directory for one test.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("northstar-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Builds variants of `Fixtures/test_plugin.c` with the system C compiler,
/// each breaking one load rule (`-DCASE_...`).
enum FixturePlugins {
    private static let directory = try! TestPaths.temporaryDirectory()

    /// Compiles one variant and returns the path of its `.so`.
    /// - Parameters:
    ///   - variant: a `CASE_...` macro, or nil for the well-behaved plugin.
    ///   - name: the name the plugin reports.
    static func build(_ variant: String?, name: String = "fixture") throws -> String {
        let output = directory.appendingPathComponent("\(variant ?? "GOOD")-\(name).so").path
        if FileManager.default.fileExists(atPath: output) { return output }
        var arguments = ["-std=c99", "-shared", "-fPIC", "-o", output,
                         "-I", TestPaths.root.appendingPathComponent("Sources/PluginAPI/include").path,
                         "-DPLUGIN_NAME=\"\(name)\"",
                         TestPaths.root.appendingPathComponent("Tests/HostTests/Fixtures/test_plugin.c").path]
        if let variant { arguments.insert("-D\(variant)", at: 0) }
        let result = try run("/usr/bin/cc", arguments)
        guard result.status == 0 else { throw FixtureError(message: "cc failed: \(result.output)") }
        return output
    }

    struct FixtureError: Error { let message: String }
}

/// Runs a program to completion; returns its exit status and combined output.
@discardableResult
func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Writes `json` to a config file in a fresh directory and loads it.
func loadConfig(_ json: String, environment: [String: String] = [:]) throws -> NorthstarConfig {
    let directory = try TestPaths.temporaryDirectory()
    let file = directory.appendingPathComponent("config.json")
    try json.write(to: file, atomically: true, encoding: .utf8)
    return try NorthstarConfig.load(file: file.path, overrides: .init(dataDirectory: directory.path),
                                    environment: environment)
}

/// A config whose plugins are the given files, each with its config section.
func pluginConfig(_ plugins: [(path: String, config: String)]) -> String {
    let entries = plugins.map { #"{"path": "\#($0.path)", "config": \#($0.config)}"# }
    return #"{"plugins": [\#(entries.joined(separator: ", "))]}"#
}
