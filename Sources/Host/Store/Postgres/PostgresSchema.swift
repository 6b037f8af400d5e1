import Logging
import PostgresNIO

/// The cluster's tables, in the `northstar` schema of the operator's
/// database, and how a node brings them to its version.
///
/// Several nodes may start at once: the migration runs in one transaction
/// under a transaction-scoped advisory lock, so one node migrates and the
/// others wait, then find the work done. A binary older than the schema
/// refuses to start rather than write what it does not understand.
enum PostgresSchema {
    /// The version this binary writes.
    static let version: Int32 = 1
    /// The advisory lock key: "northsta" read as a big-endian integer.
    static let migrationLock: Int64 = 0x6E6F_7274_6873_7461

    /// Version 1, one statement each (the extended protocol takes one at a time).
    static let statements = [
        "CREATE SCHEMA IF NOT EXISTS northstar",
        "CREATE TABLE IF NOT EXISTS northstar.schema_version (version integer NOT NULL)",
        """
        CREATE TABLE IF NOT EXISTS northstar.resources (
            id text PRIMARY KEY, kind text NOT NULL, tenant text NOT NULL, env text NOT NULL,
            created_by text NOT NULL, created_at_ms bigint NOT NULL, title text, metadata text NOT NULL,
            head_rev bigint NOT NULL DEFAULT 0)
        """,
        // One row per stream: its lock serializes appends, so seq has no races and no gaps.
        "CREATE TABLE IF NOT EXISTS northstar.streams (stream text PRIMARY KEY, head_seq bigint NOT NULL, first_seq bigint NOT NULL)",
        """
        CREATE TABLE IF NOT EXISTS northstar.events (
            stream text NOT NULL, seq bigint NOT NULL, id text NOT NULL, type text NOT NULL, json bytea NOT NULL,
            PRIMARY KEY (stream, seq))
        """,
        """
        CREATE TABLE IF NOT EXISTS northstar.idempotency (
            stream text NOT NULL, key text NOT NULL, fingerprint text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (stream, key))
        """,
        "CREATE TABLE IF NOT EXISTS northstar.canvas_heads (canvas text PRIMARY KEY, head_rev bigint NOT NULL, document bytea NOT NULL)",
        """
        CREATE TABLE IF NOT EXISTS northstar.revisions (
            canvas text NOT NULL, rev bigint NOT NULL, base_rev bigint NOT NULL, command_id text NOT NULL,
            actor text NOT NULL, ts text NOT NULL, ops bytea NOT NULL, event_seq bigint NOT NULL, PRIMARY KEY (canvas, rev))
        """,
        """
        CREATE TABLE IF NOT EXISTS northstar.snapshots (
            canvas text NOT NULL, rev bigint NOT NULL, document bytea NOT NULL, PRIMARY KEY (canvas, rev))
        """,
        """
        CREATE TABLE IF NOT EXISTS northstar.gestures (
            id text PRIMARY KEY, canvas text NOT NULL, created_ms bigint NOT NULL, state bytea NOT NULL)
        """,
        "CREATE INDEX IF NOT EXISTS gestures_by_canvas ON northstar.gestures (canvas, created_ms)",
        "CREATE TABLE IF NOT EXISTS northstar.write_probe (id integer PRIMARY KEY, at_ms bigint NOT NULL)",
        """
        CREATE TABLE IF NOT EXISTS northstar.commands (
            canvas text NOT NULL, command_id text NOT NULL, fingerprint text NOT NULL, rev bigint NOT NULL,
            PRIMARY KEY (canvas, command_id))
        """,
    ]

    /// Brings the database to `version`, or refuses a newer one.
    static func migrate(_ connection: PostgresConnection, address: String, logger: Logger) async throws {
        try await connection.query("BEGIN", logger: logger)
        do {
            try await connection.query("SELECT pg_advisory_xact_lock(\(migrationLock))", logger: logger)
            let found = try await current(connection, logger: logger)
            guard found <= version else {
                throw StoreOpenError(path: address, reason: "the database has Northstar schema \(found), written by a newer Northstar; this one knows schemas up to \(version). Run the newer version, or restore a backup")
            }
            if found < version {
                for statement in statements { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                try await connection.query("DELETE FROM northstar.schema_version", logger: logger)
                try await connection.query("INSERT INTO northstar.schema_version VALUES (\(version))", logger: logger)
                logger.notice("store schema migrated", metadata: ["from": "\(found)", "to": "\(version)"])
            }
            try await connection.query("COMMIT", logger: logger)
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
    }

    /// 0 for a database Northstar has not used yet.
    static func current(_ connection: PostgresConnection, logger: Logger) async throws -> Int32 {
        let exists = try await connection.query("SELECT to_regclass('northstar.schema_version') IS NOT NULL", logger: logger)
            .collect().first?.decode(Bool.self) ?? false
        guard exists else { return 0 }
        return try await connection.query("SELECT max(version) FROM northstar.schema_version", logger: logger)
            .collect().first?.decode(Int32?.self) ?? 0
    }
}
