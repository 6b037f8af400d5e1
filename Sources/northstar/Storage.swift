import ArgumentParser
import Foundation
import NorthstarHost

/// `northstar storage ...`
struct Storage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with the storage plugins of a config.",
        subcommands: [Migrate.self]
    )

    /// `northstar storage migrate --from fs --to s3 [--prefix P]`
    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy objects from one configured storage plugin to another, verifying every SHA-256.",
            discussion: """
            Both plugins must be listed in the config. Objects already at the destination with the \
            same SHA-256 are skipped, and each copy becomes visible only when whole, so an \
            interrupted run is simply run again. Exits 1 if any object failed.
            """
        )

        @OptionGroup var options: NodeOptions

        @Option(help: "The storage plugin to copy from (its name in the config).")
        var from: String

        @Option(help: "The storage plugin to copy to.")
        var to: String

        @Option(help: "Only keys starting with this (e.g. tenants/t_acme/prod/).")
        var prefix: String = "tenants/"

        func run() async throws {
            let config = try options.load()
            let plugins = try fail(on: { try PluginSet(config: config) })
            defer { plugins.discardAll() }
            let migration = try fail(on: { try StorageMigration(plugins: plugins, from: from, to: to, config: config) })
            let started = Date()
            let report = try await migration.run(prefix: prefix) { print($0) }
            let seconds = Date().timeIntervalSince(started)
            print(String(format: "migrate %@ -> %@ (prefix %@): %d copied (%llu bytes), %d already there, %d failed, in %.1f s",
                         from, to, prefix, report.copied, report.bytes, report.skipped, report.failed.count, seconds))
            if !report.failed.isEmpty { throw ExitCode(1) }
        }
    }
}
