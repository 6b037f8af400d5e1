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
        // The cluster's nodes, for the console (`ClusterPresence`).
        """
        CREATE TABLE IF NOT EXISTS northstar.nodes (
            id text PRIMARY KEY, address text NOT NULL, version text NOT NULL, state text NOT NULL,
            started_at_ms bigint NOT NULL, seen_at_ms bigint NOT NULL)
        """,
        publishFunction,
        // It runs with the schema owner's rights: only roles granted EXECUTE may call it.
        "REVOKE ALL ON FUNCTION northstar.publish(text, text, text, text, jsonb, text, text) FROM PUBLIC",
    ]

    /// `northstar.publish(tenant, env, stream, type, data[, actor[, traceparent]])`:
    /// appends an event from the application's own transaction. The event
    /// exists, and is delivered live on every node, exactly when that
    /// transaction commits; a rollback leaves nothing, not even a used seq.
    /// It is the same event a node would append (StreamEvent v1, the next
    /// seq under the stream's lock, the notification), and isolation holds:
    /// the stream must be a thread or canvas of that tenant in that env.
    /// Types are `app.<name>` so an application cannot pass for the kernel.
    /// It runs with its owner's rights (`SECURITY DEFINER`, a fixed
    /// `search_path`), so an application's role needs EXECUTE on it and no
    /// right on the tables, where it could skip the checks.
    static let publishFunction = """
        CREATE OR REPLACE FUNCTION northstar.publish(
            p_tenant text, p_env text, p_stream text, p_type text, p_data jsonb,
            p_actor text DEFAULT 'app', p_traceparent text DEFAULT NULL) RETURNS bigint
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
            alphabet constant text := 'abcdefghijklmnopqrstuvwxyz234567';
            v_kind text := split_part(p_stream, ':', 1);
            v_resource text := split_part(p_stream, ':', 2);
            v_random bytea := uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid());
            v_event_id text := 'ev_';
            v_trace text := p_traceparent;
            v_seq bigint;
            v_event jsonb;
        BEGIN
            IF p_type IS NULL OR p_type !~ '^app([.][a-z][a-z0-9_]*)+$' THEN
                RAISE EXCEPTION 'northstar.publish: type must be app.<name> (lowercase, dotted), got %', coalesce(p_type, 'null')
                    USING ERRCODE = '22023';
            END IF;
            IF p_data IS NULL OR jsonb_typeof(p_data) <> 'object' THEN
                RAISE EXCEPTION 'northstar.publish: data must be a JSON object' USING ERRCODE = '22023';
            END IF;
            IF p_actor IS NULL OR length(p_actor) = 0 OR length(p_actor) > 200 THEN
                RAISE EXCEPTION 'northstar.publish: actor must be 1 to 200 characters' USING ERRCODE = '22023';
            END IF;
            IF v_trace IS NOT NULL AND (v_trace !~ '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$'
                    OR substr(v_trace, 4, 32) = repeat('0', 32) OR substr(v_trace, 37, 16) = repeat('0', 16)) THEN
                RAISE EXCEPTION 'northstar.publish: traceparent must be a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)'
                    USING ERRCODE = '22023';
            END IF;
            IF v_kind NOT IN ('chat', 'canvas') THEN
                RAISE EXCEPTION 'northstar.publish: stream must be chat:<thread_id> or canvas:<canvas_id>' USING ERRCODE = '22023';
            END IF;
            -- Another tenant's stream, another env's and a missing one are one answer.
            PERFORM 1 FROM northstar.resources r
                WHERE r.id = v_resource AND r.kind = CASE v_kind WHEN 'chat' THEN 'thread' ELSE 'canvas' END
                  AND r.tenant = p_tenant AND r.env = p_env;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'northstar.publish: no stream % for this tenant and env', p_stream USING ERRCODE = 'P0002';
            END IF;
            SELECT s.head_seq + 1 INTO v_seq FROM northstar.streams s WHERE s.stream = p_stream FOR UPDATE;
            FOR i IN 0..25 LOOP
                v_event_id := v_event_id || substr(alphabet, 1 + get_byte(v_random, i) % 32, 1);
            END LOOP;
            IF v_trace IS NULL THEN
                v_trace := '00-' || replace(gen_random_uuid()::text, '-', '') || '-'
                    || substr(replace(gen_random_uuid()::text, '-', ''), 1, 16) || '-01';
            END IF;
            v_event := jsonb_build_object('v', 1, 'id', v_event_id, 'stream', p_stream, 'seq', v_seq, 'type', p_type,
                'ts', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                'actor', p_actor, 'trace', v_trace, 'data', p_data);
            INSERT INTO northstar.events VALUES (p_stream, v_seq, v_event_id, p_type, convert_to(v_event::text, 'UTF8'));
            UPDATE northstar.streams SET head_seq = v_seq WHERE stream = p_stream;
            PERFORM pg_notify('northstar_events', v_seq || ' ' || p_stream);
            RETURN v_seq;
        END
        $$
        """

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
