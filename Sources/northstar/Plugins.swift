import ArgumentParser
import Foundation
import NorthstarHost

/// `northstar plugins ...`
struct Plugins: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with plugin files.",
        subcommands: [Inspect.self, PluginSDK.self, PluginNew.self, PluginTest.self]
    )

    /// `northstar plugins inspect PATH...`: what each file is, or why the host would refuse it.
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Describe plugin .so files, or say exactly why the host would refuse them.",
            discussion: "Loads each file (never initialises it) and runs every load check. Exits 1 if any file is refused."
        )

        @Argument(help: "Plugin files (.so).")
        var paths: [String]

        @Flag(help: "Print a JSON array instead of text.")
        var json = false

        /// One file's verdict; fields absent when they do not apply.
        struct Report: Encodable {
            var path: String
            var status: String
            var name: String?
            var kind: String?
            var version: String?
            var abi_version: String?
            var vtable_minor: String?
            var description: String?
            var warnings: [String]?
            var rule: String?
            var message: String?
            var remedy: String?
        }

        func run() throws {
            var reports: [Report] = []
            for path in paths {
                do {
                    let library = try PluginLoader.load(path)
                    reports.append(Report(path: path, status: "ok", name: library.name, kind: "\(library.kind)",
                                          version: library.version, abi_version: library.abiVersion,
                                          vtable_minor: "\(library.vtableMinor)", description: library.summary,
                                          warnings: library.warnings))
                } catch let error as PluginLoadError {
                    reports.append(Report(path: path, status: "refused", rule: error.rule.rawValue,
                                          message: error.message, remedy: error.remedy))
                }
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(reports), as: UTF8.self))
            } else {
                for report in reports { print(Self.text(report)) }
            }
            if reports.contains(where: { $0.status != "ok" }) { throw ExitCode(1) }
        }

        static func text(_ report: Report) -> String {
            guard report.status == "ok" else {
                return "\(report.path): REFUSED [\(report.rule ?? "")]\n  why: \(report.message ?? "")\n  fix: \(report.remedy ?? "")"
            }
            let warnings = (report.warnings ?? []).map { "\n  warning:     \($0)" }.joined()
            return """
            \(report.path): ok
              name:        \(report.name ?? "")
              kind:        \(report.kind ?? "") (vtable minor \(report.vtable_minor ?? ""))
              version:     \(report.version ?? "")
              abi:         \(report.abi_version ?? "")
              description: \(report.description ?? "")
            """ + warnings
        }
    }
}

/// `northstar config ...`
struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with configuration files.",
        subcommands: [Check.self]
    )

    /// `northstar config check`: validate a config and its plugins, start nothing.
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a config: parse it, load, check and initialise its plugins; start nothing, bind no port."
        )

        @OptionGroup var options: NodeOptions

        func run() throws {
            let config = try options.load()
            let plugins = try fail(on: { try PluginSet(config: config) })
            let names = plugins.plugins.map { "\($0.name) (\($0.kind))" }.joined(separator: ", ")
            for plugin in plugins.plugins {
                for warning in plugin.library.warnings { print("warning: plugin \(plugin.name) (\(plugin.library.file)): \(warning)") }
            }
            print("\(config.source): ok: env \(config.env), listen \(config.listen), plugins: \(names.isEmpty ? "none" : names)")
            plugins.discardAll()
        }
    }
}
