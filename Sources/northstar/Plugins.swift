import ArgumentParser
import Foundation
import NorthstarHost

/// `northstar plugins ...`
struct Plugins: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with plugin files.",
        subcommands: [Inspect.self]
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

        func run() throws {
            var reports: [[String: String]] = []
            for path in paths {
                do {
                    let library = try PluginLoader.load(path)
                    reports.append([
                        "path": path, "status": "ok", "name": library.name, "kind": "\(library.kind)",
                        "version": library.version, "abi_version": library.abiVersion,
                        "vtable_minor": "\(library.vtableMinor)", "description": library.summary,
                    ])
                } catch let error as PluginLoadError {
                    reports.append(["path": path, "status": "refused", "rule": error.rule.rawValue,
                                    "message": error.message, "remedy": error.remedy])
                }
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(reports), as: UTF8.self))
            } else {
                for report in reports { print(Self.text(report)) }
            }
            if reports.contains(where: { $0["status"] != "ok" }) { throw ExitCode(1) }
        }

        static func text(_ report: [String: String]) -> String {
            let path = report["path"] ?? "?"
            guard report["status"] == "ok" else {
                return "\(path): REFUSED [\(report["rule"] ?? "")]\n  why: \(report["message"] ?? "")\n  fix: \(report["remedy"] ?? "")"
            }
            return """
            \(path): ok
              name:        \(report["name"] ?? "")
              kind:        \(report["kind"] ?? "") (vtable minor \(report["vtable_minor"] ?? ""))
              version:     \(report["version"] ?? "")
              abi:         \(report["abi_version"] ?? "")
              description: \(report["description"] ?? "")
            """
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
            print("\(config.source): ok: env \(config.env), listen \(config.listen), plugins: \(names.isEmpty ? "none" : names)")
            plugins.discardAll()
        }
    }
}
