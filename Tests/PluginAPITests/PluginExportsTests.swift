import Foundation
import Testing

/// Every plugin we build exports its entry symbol and nothing else.
@Suite struct PluginExportsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// The folder `swift test` built the plugins into.
    static var binDirectory: URL {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for candidate in [beside, beside.deletingLastPathComponent(), root.appendingPathComponent(".build/debug")]
        where FileManager.default.fileExists(atPath: candidate.appendingPathComponent("libNorthstarAPIKey.so").path) {
            return candidate
        }
        return root.appendingPathComponent(".build/debug")
    }

    /// The global symbols a shared object defines, as `nm -D --defined-only` lists them.
    static func exportedSymbols(_ path: String) throws -> [String] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/nm")
        process.arguments = ["-D", "--defined-only", path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        // "ADDRESS TYPE NAME": an upper-case type is a global definition.
        return output.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 3, parts[1].first?.isUppercase == true else { return nil }
            return String(parts[2])
        }
    }

    @Test("each plugin .so exports northstar_plugin_v1 and nothing else")
    func onlyTheEntryIsExported() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.binDirectory.path)
            .filter { $0.hasPrefix("libNorthstar") && $0.hasSuffix(".so") }
        // The list must hold the plugins we ship, so the test cannot pass on an empty folder.
        #expect(Set(files).isSuperset(of: ["libNorthstarAPIKey.so", "libNorthstarJWT.so", "libNorthstarSSE.so", "libNorthstarWS.so",
                                           "libNorthstarFS.so", "libNorthstarS3.so", "libNorthstarGCS.so"]))
        for file in files {
            let symbols = try Self.exportedSymbols(Self.binDirectory.appendingPathComponent(file).path)
            #expect(symbols == ["northstar_plugin_v1"], "\(file) exports \(symbols.prefix(10))")
        }
    }
}
