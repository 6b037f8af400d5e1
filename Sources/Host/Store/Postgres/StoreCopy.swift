import Crypto
import Foundation
import Logging
import PostgresNIO

/// `northstar store copy`: moves a node's SQLite store into a cluster's
/// PostgreSQL database, then proves the copy by counting and hashing every
/// table on both sides.
///
/// Rows go in key order, a page per transaction, with `ON CONFLICT DO
/// NOTHING`: a copy cut short is run again and goes on where it stopped.
/// The SQLite file is read inside one read transaction, so the copy is one
/// consistent snapshot even if a node still writes to it (stop it first, or
/// what it writes after the snapshot is not copied). A target row that
/// differs from the source (the cluster wrote to it meanwhile) is not
/// overwritten: the verification names its table and the run fails.
public struct StoreCopy {
    /// A column's type in PostgreSQL; SQLite values are converted to it.
    enum ColumnType { case text, integer, bytes }

    struct Table {
        let name: String
        let columns: [(name: String, type: ColumnType)]
        /// The primary key's columns, in order.
        let key: [String]
    }

    /// Everything a store holds, parents before children.
    static let tables = [
        Table(name: "resources", columns: [("id", .text), ("kind", .text), ("tenant", .text), ("env", .text), ("created_by", .text),
                                           ("created_at_ms", .integer), ("title", .text), ("metadata", .text), ("head_rev", .integer)],
              key: ["id"]),
        Table(name: "streams", columns: [("stream", .text), ("head_seq", .integer), ("first_seq", .integer)], key: ["stream"]),
        Table(name: "events", columns: [("stream", .text), ("seq", .integer), ("id", .text), ("type", .text), ("json", .bytes)],
              key: ["stream", "seq"]),
        Table(name: "idempotency", columns: [("stream", .text), ("key", .text), ("fingerprint", .text), ("seq", .integer)],
              key: ["stream", "key"]),
        Table(name: "canvas_heads", columns: [("canvas", .text), ("head_rev", .integer), ("document", .bytes)], key: ["canvas"]),
        Table(name: "revisions", columns: [("canvas", .text), ("rev", .integer), ("base_rev", .integer), ("command_id", .text),
                                           ("actor", .text), ("ts", .text), ("ops", .bytes), ("event_seq", .integer)],
              key: ["canvas", "rev"]),
        Table(name: "snapshots", columns: [("canvas", .text), ("rev", .integer), ("document", .bytes)], key: ["canvas", "rev"]),
        Table(name: "gestures", columns: [("id", .text), ("canvas", .text), ("created_ms", .integer), ("state", .bytes)], key: ["id"]),
        Table(name: "commands", columns: [("canvas", .text), ("command_id", .text), ("fingerprint", .text), ("rev", .integer)],
              key: ["canvas", "command_id"]),
    ]

    static let pageSize = 1000
    /// Rows carry up to a request body of JSON each: a page stops at this much (and holds one row at least).
    static let pageBytes = 4 << 20

    /// One table's outcome.
    public struct TableReport: Sendable {
        public let table: String
        public let inserted: Int
        public let sourceRows: Int
        public let targetRows: Int
        public let sourceHash: String
        public let targetHash: String
        public var verified: Bool { sourceRows == targetRows && sourceHash == targetHash }
    }

    let source: SQLiteConnection
    let target: PostgresConnection
    let logger: Logger

    /// Opens both stores: the SQLite file must exist (it is brought to this
    /// binary's schema first); the database gets the cluster schema.
    public static func open(sqlitePath: String, postgresURL: String, logger: Logger) async throws -> (StoreCopy, close: () async -> Void) {
        guard FileManager.default.fileExists(atPath: sqlitePath) else {
            throw StoreOpenError(path: sqlitePath, reason: "no such file")
        }
        let store = try SQLiteStore(path: sqlitePath)
        let address: PostgresAddress
        do {
            address = try PostgresAddress(url: postgresURL)
        } catch {
            throw StoreOpenError(path: "--to", reason: "\(error)")
        }
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(configuration: try address.connectionConfiguration(), id: 1, logger: logger)
            try await PostgresSchema.migrate(connection, address: address.redacted, logger: logger)
        } catch let error as StoreOpenError {
            throw error
        } catch {
            throw StoreOpenError(path: address.redacted, reason: "the database cannot be used: \(PostgresStore.describe(error))")
        }
        return (StoreCopy(source: store.writer, target: connection, logger: logger), { try? await connection.close() })
    }

    /// Copies every table, then verifies each; `progress` gets a line per table.
    public func run(progress: (String) -> Void) async throws -> [TableReport] {
        // One snapshot of the source for the copy and its verification.
        try source.execute("BEGIN")
        defer { try? source.execute("COMMIT") }
        var reports: [TableReport] = []
        for table in Self.tables {
            let inserted = try await copy(table)
            let (sourceRows, sourceHash) = try sourceDigest(table)
            let (targetRows, targetHash) = try await targetDigest(table)
            let report = TableReport(table: table.name, inserted: inserted, sourceRows: sourceRows, targetRows: targetRows,
                                     sourceHash: sourceHash, targetHash: targetHash)
            progress("\(table.name): \(inserted) copied, \(sourceRows) in source, \(targetRows) in target, "
                     + (report.verified ? "sha256 \(sourceHash.prefix(16)) verified" : "MISMATCH (source \(sourceHash.prefix(16)), target \(targetHash.prefix(16)))"))
            reports.append(report)
        }
        return reports
    }

    // MARK: Copy

    /// Copies one table in key order; returns how many rows were new.
    private func copy(_ table: Table) async throws -> Int {
        var inserted = 0
        var after: [SQLValue]?
        while true {
            let rows = try sourcePage(table, after: after)
            guard let last = rows.last else { return inserted }
            inserted += try await insert(rows, into: table)
            let keyIndexes = table.key.map { key in table.columns.firstIndex { $0.name == key }! }
            after = keyIndexes.map { last[$0] }
        }
    }

    /// A page of source rows after the key `after` (SQLite compares text bytewise, as the target's "C" collation):
    /// at most `pageSize` rows, and no more once those before hold `pageBytes` of stored JSON.
    private func sourcePage(_ table: Table, after: [SQLValue]?) throws -> [[SQLValue]] {
        let columns = table.columns.map(\.name).joined(separator: ", ")
        let key = table.key.joined(separator: ", ")
        let filter = after.map { " WHERE (\(key)) > (\(Array(repeating: "?", count: $0.count).joined(separator: ", ")))" } ?? ""
        var limit = Self.pageSize
        if let sized = table.columns.first(where: { $0.type == .bytes })?.name {
            // The sizes first (`length` of a blob reads the row's header, not the blob), in
            // the copy's one read transaction: the rows read next are the same rows.
            let sizes = try source.query("SELECT length(\(sized)) FROM \(table.name)\(filter) ORDER BY \(key) LIMIT \(Self.pageSize)",
                                         after ?? [])
            var held = 0
            limit = 0
            for size in sizes where held < Self.pageBytes {
                held += Int(size[0].integer ?? 0)
                limit += 1
            }
        }
        return try source.query("SELECT \(columns) FROM \(table.name)\(filter) ORDER BY \(key) LIMIT \(max(limit, 1))", after ?? [])
    }

    /// Inserts a page in one transaction; rows already there are left as they are.
    private func insert(_ rows: [[SQLValue]], into table: Table) async throws -> Int {
        var bindings = PostgresBindings()
        var tuples: [String] = []
        for row in rows {
            var placeholders: [String] = []
            for (value, column) in zip(row, table.columns) {
                switch try Self.convert(value, to: column.type, table: table.name, column: column.name) {
                case .null: bindings.appendNull()
                case .text(let text): bindings.append(text)
                case .integer(let number): bindings.append(number)
                case .bytes(let bytes): try bindings.append(Data(bytes))
                }
                placeholders.append("$\(bindings.count)")
            }
            tuples.append("(\(placeholders.joined(separator: ", ")))")
        }
        let sql = "INSERT INTO northstar.\(table.name) (\(table.columns.map(\.name).joined(separator: ", "))) VALUES "
            + tuples.joined(separator: ", ") + " ON CONFLICT DO NOTHING RETURNING 1"
        // One statement is one transaction: a page is in whole or not at all. RETURNING counts the new rows.
        return try await target.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger).collect().count
    }

    // MARK: Verify

    /// A value as the target stores it.
    enum Value: Equatable {
        case null, text(String), integer(Int64), bytes([UInt8])
    }

    static func convert(_ value: SQLValue, to type: ColumnType, table: String, column: String) throws -> Value {
        switch (value, type) {
        case (.null, _): return .null
        case (.text(let text), .text): return .text(text)
        case (.blob(let bytes), .text): return .text(String(decoding: bytes, as: UTF8.self))
        case (.text(let text), .bytes): return .bytes(Array(text.utf8))
        case (.blob(let bytes), .bytes): return .bytes(bytes)
        case (.integer(let number), .integer): return .integer(number)
        default: throw StoreCorruption(column: "\(table).\(column)", why: "a \(value) where \(type) was expected")
        }
    }

    /// Row count and SHA-256 of the table's canonical rows, in key order.
    private func sourceDigest(_ table: Table) throws -> (Int, String) {
        var hasher = SHA256()
        var count = 0
        var after: [SQLValue]?
        while true {
            let rows = try sourcePage(table, after: after)
            guard let last = rows.last else { break }
            for row in rows {
                let values = try zip(row, table.columns).map { try Self.convert($0, to: $1.type, table: table.name, column: $1.name) }
                Self.feed(values, into: &hasher)
                count += 1
            }
            let keyIndexes = table.key.map { key in table.columns.firstIndex { $0.name == key }! }
            after = keyIndexes.map { last[$0] }
        }
        return (count, Self.hex(hasher.finalize()))
    }

    private func targetDigest(_ table: Table) async throws -> (Int, String) {
        var hasher = SHA256()
        var count = 0
        let order = table.key.map { name in
            table.columns.first { $0.name == name }!.type == .text ? "\(name) COLLATE \"C\"" : name
        }.joined(separator: ", ")
        let rows = try await target.query(PostgresQuery(unsafeSQL: """
            SELECT \(table.columns.map(\.name).joined(separator: ", ")) FROM northstar.\(table.name) ORDER BY \(order)
            """), logger: logger)
        for try await row in rows {
            let cells = row.makeRandomAccess()
            let values: [Value] = try table.columns.indices.map { index in
                switch table.columns[index].type {
                case .text: try cells[index].decode(String?.self).map(Value.text) ?? .null
                case .integer: try cells[index].decode(Int64?.self).map(Value.integer) ?? .null
                case .bytes: try cells[index].decode(Data?.self).map { Value.bytes(Array($0)) } ?? .null
                }
            }
            Self.feed(values, into: &hasher)
            count += 1
        }
        return (count, Self.hex(hasher.finalize()))
    }

    /// Each value with a type tag and a length, so no two rows encode alike.
    static func feed(_ values: [Value], into hasher: inout SHA256) {
        for value in values {
            switch value {
            case .null: hasher.update(data: [0])
            case .integer(let number): hasher.update(data: [1] + withUnsafeBytes(of: number.bigEndian, Array.init))
            case .text(let text): feed(tag: 2, Array(text.utf8), into: &hasher)
            case .bytes(let bytes): feed(tag: 3, bytes, into: &hasher)
            }
        }
    }

    private static func feed(tag: UInt8, _ bytes: [UInt8], into hasher: inout SHA256) {
        hasher.update(data: [tag] + withUnsafeBytes(of: UInt64(bytes.count).bigEndian, Array.init))
        hasher.update(data: bytes)
    }

    private static func hex(_ digest: SHA256.Digest) -> String { digest.map { String(format: "%02x", $0) }.joined() }
}
