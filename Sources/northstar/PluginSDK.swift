import ArgumentParser
import Foundation
import NorthstarHost
import PluginAPI

/// `northstar plugins sdk`: installs what a third party needs to build a
/// plugin with plain `cc`, without this repository.
struct PluginSDK: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sdk",
        abstract: "Install the plugin SDK: the C header, a pkg-config file and the exports map.",
        discussion: """
        Writes PREFIX/include/northstar/northstar_plugin.h, PREFIX/share/northstar/exports.map and \
        PREFIX/lib/pkgconfig/northstar-plugin.pc. Then, with PKG_CONFIG_PATH=PREFIX/lib/pkgconfig, \
        `cc $(pkg-config --cflags northstar-plugin) -shared -fPIC -o libmine.so mine.c \
        $(pkg-config --libs northstar-plugin)` builds a plugin that exports only its entry.
        """
    )

    @Option(help: "Where to install (created if missing).")
    var prefix: String

    func run() throws {
        let root = URL(fileURLWithPath: prefix).standardizedFileURL
        let files: [(String, String)] = [
            ("include/northstar/northstar_plugin.h", EmbeddedSDK.header + "\n"),
            ("share/northstar/exports.map", EmbeddedSDK.exportsMap + "\n"),
            ("lib/pkgconfig/northstar-plugin.pc", Self.pkgConfig(prefix: root.path)),
        ]
        for (path, text) in files {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url, options: .atomic)
            print("wrote \(url.path)")
        }
        print("build plugins with: PKG_CONFIG_PATH=\(root.path)/lib/pkgconfig pkg-config --cflags --libs northstar-plugin")
    }

    /// The pkg-config file: the header's folder, and the version script that
    /// keeps every symbol but the entry local.
    static func pkgConfig(prefix: String) -> String {
        """
        prefix=\(prefix)
        includedir=${prefix}/include/northstar
        datadir=${prefix}/share/northstar

        Name: northstar-plugin
        Description: Build Northstar plugins in C against the plugin ABI
        Version: \(NS_ABI_MAJOR).\(NS_ABI_MINOR).0
        Cflags: -I${includedir}
        Libs: -Wl,--version-script=${datadir}/exports.map

        """
    }
}

/// `northstar plugins new`: a small, commented plugin that builds and works,
/// to start from.
struct PluginNew: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new",
        abstract: "Write a plugin to start from: C source and a Makefile, building against the installed SDK.",
        discussion: """
        transport: a long-polling chat endpoint, GET /NAME/chat/{thread_id}?after=N&wait=S. \
        storage: objects kept in memory, with the SHA-256 contract. auth: API keys hashed in config \
        (links OpenSSL's libcrypto). Each is a complete plugin: build it with `make` once \
        `northstar plugins sdk` has installed the SDK, then check it with `northstar plugins test`.
        """
    )

    enum Kind: String, ExpressibleByArgument, CaseIterable { case transport, storage, auth }
    enum Language: String, ExpressibleByArgument, CaseIterable { case c }

    @Option(help: "transport, storage or auth.")
    var kind: Kind

    @Option(help: "The language of the template (c).")
    var lang: Language = .c

    @Option(help: "The plugin's name: [a-z][a-z0-9_-]{0,31} (also its file and library name).")
    var name: String

    @Option(help: "The folder to write (default: ./NAME); it must not exist yet.")
    var directory: String?

    func validate() throws {
        guard name.wholeMatch(of: /[a-z][a-z0-9_-]{0,31}/) != nil else {
            throw ValidationError("--name \"\(name)\" must match [a-z][a-z0-9_-]{0,31}")
        }
    }

    func run() throws {
        let folder = URL(fileURLWithPath: directory ?? name)
        guard !FileManager.default.fileExists(atPath: folder.path) else {
            throw ValidationError("\(folder.path) exists already; name a new folder with --directory")
        }
        let (template, libraries) = switch kind {
        case .transport: (EmbeddedSDK.transportTemplate, "-lpthread")
        case .storage: (EmbeddedSDK.storageTemplate, "-lpthread")
        case .auth: (EmbeddedSDK.authTemplate, "-lcrypto")
        }
        guard let source = Self.renamed(template, to: name) else {
            throw ValidationError("the \(kind) template has no PLUGIN_NAME line (a bug: report it)")
        }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data(source.utf8).write(to: folder.appendingPathComponent("\(name).c"))
        try Data(Self.makefile(name: name, libraries: libraries).utf8).write(to: folder.appendingPathComponent("Makefile"))
        print("wrote \(folder.path)/\(name).c and \(folder.path)/Makefile; build with `make -C \(folder.path)` (the SDK from `northstar plugins sdk` on PKG_CONFIG_PATH)")
    }

    /// The template with its `#define PLUGIN_NAME "..."` line set to `name`.
    static func renamed(_ template: String, to name: String) -> String? {
        var lines = template.components(separatedBy: "\n")
        guard let index = lines.firstIndex(where: { $0.hasPrefix("#define PLUGIN_NAME ") }) else { return nil }
        lines[index] = "#define PLUGIN_NAME \"\(name)\""
        return lines.joined(separator: "\n") + "\n"
    }

    static func makefile(name: String, libraries: String) -> String {
        """
        # Builds lib\(name).so with plain cc against the installed Northstar plugin
        # SDK: `northstar plugins sdk --prefix DIR`, then
        # `PKG_CONFIG_PATH=DIR/lib/pkgconfig make`.
        CFLAGS ?= -O2 -g -Wall -Wextra -Werror
        SDK_CFLAGS := $(shell pkg-config --cflags northstar-plugin)
        SDK_LIBS := $(shell pkg-config --libs northstar-plugin)

        lib\(name).so: \(name).c
        \t$(CC) -std=c99 -D_POSIX_C_SOURCE=200809L $(CFLAGS) $(SDK_CFLAGS) -shared -fPIC -o $@ $< $(SDK_LIBS) \(libraries)

        clean:
        \trm -f lib\(name).so

        .PHONY: clean

        """
    }
}

/// `northstar plugins test`: the conformance kit.
struct PluginTest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Check a plugin against the contract of its kind, with a real host.",
        discussion: """
        storage: the artifact contract through the host's storage layer (put/get/ranges/head/list/delete, \
        the SHA-256 contract, aborts, concurrent use, a reader left half-read). transport: a node with \
        the dev JWT auth and the plugin, each route asked without a credential, with forged, expired and \
        other-env ones, by another tenant and by the owner; a client that leaves; a SIGTERM with a \
        request open. auth: hostile credentials, minted ones and their claims, tampering, concurrency. \
        Prints each check; exits 1 if any fails, 2 if the file does not load.
        """
    )

    @Argument(help: "The plugin file (.so).")
    var file: String

    @Option(help: "A JSON file holding the plugin's config section (default: {}).")
    var config: String?

    @Option(help: "For an auth plugin: a credential it must accept, as \"<scheme> <value>\".")
    var credential: String?

    @Flag(help: "Print a JSON report instead of text.")
    var json = false

    func run() async throws {
        var section = JSONValue.object([:])
        if let config {
            guard let data = FileManager.default.contents(atPath: config) else { throw ValidationError("cannot read \(config)") }
            guard let parsed = try? JSONValue.parse(data), case .object = parsed else {
                throw ValidationError("--config \(config) must hold the plugin's config section, a JSON object")
            }
            section = parsed
        }
        if credential != nil, let library = try? PluginLoader.load(file), library.kind != .auth {
            throw ValidationError("--credential is for auth plugins; \(file) is a \(library.kind) plugin")
        }
        let executable = PluginSet.executablePath()
        let report: Conformance.Report
        do {
            report = try await Conformance.run(file: file, config: section, executable: executable, credential: credential)
        } catch let error as PluginLoadError {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(2)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report.checks), as: UTF8.self))
        } else {
            print("\(file): \(report.library.kind) plugin \"\(report.library.name)\" \(report.library.version), ABI \(report.library.abiVersion)")
            for check in report.checks {
                print(check.passed ? "  pass  \(check.name)" : "  FAIL  \(check.name)\n        \(check.reason)")
            }
            let failed = report.checks.filter { !$0.passed }.count
            print(failed == 0 ? "all \(report.checks.count) checks passed" : "\(failed) of \(report.checks.count) checks failed")
        }
        if !report.passed { throw ExitCode(1) }
    }
}
