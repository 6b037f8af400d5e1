import ArgumentParser
import Foundation
import Logging
import NorthstarHost

/// `northstar store ...`
struct Store: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with the event store.",
        subcommands: [Copy.self]
    )

    /// `northstar store copy --from <sqlite file> --to <postgres url>`
    struct Copy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy a node's SQLite store into a cluster's PostgreSQL database, verifying counts and hashes.",
            discussion: """
            Every table is copied in key order, a page per transaction; rows already in the database \
            are kept, so an interrupted copy is simply run again. Then each table is counted and \
            hashed on both sides. Exits 1 if any table differs (the database was written to \
            meanwhile), 2 if either store cannot be opened. Stop the node first: what it writes \
            after the copy starts is not copied. Put a password in the environment: \
            --to "$NORTHSTAR_PG_URL".
            """
        )

        @Option(help: "The SQLite file (a node's data_dir/northstar.sqlite).")
        var from: String

        @Option(help: "postgres://user[:password]@host[:port]/database[?sslmode=disable|prefer|require]")
        var to: String

        func run() async throws {
            let logger = Logger(label: "northstar.store")
            let (copy, close) = try await failAsync { try await StoreCopy.open(sqlitePath: from, postgresURL: to, logger: logger) }
            let started = Date()
            let reports: [StoreCopy.TableReport]
            do {
                reports = try await copy.run { print($0) }
            } catch {
                await close()
                throw error
            }
            await close()
            let failed = reports.filter { !$0.verified }
            print(String(format: "copy: %d rows copied, %d tables verified, %d differ, in %.1f s",
                         reports.reduce(0) { $0 + $1.inserted }, reports.count - failed.count, failed.count, Date().timeIntervalSince(started)))
            if !failed.isEmpty {
                FileHandle.standardError.write(Data("error: \(failed.map(\.table).joined(separator: ", ")) differ between the SQLite file and the database\n".utf8))
                throw ExitCode(1)
            }
        }
    }
}

/// `fail`, for async work: a store that cannot be opened is one line and exit 2.
func failAsync<T>(on body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as StoreOpenError {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(2)
    }
}
