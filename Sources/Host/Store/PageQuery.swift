import PostgresNIO

/// The query of a page of a log table (events, revisions): an owner's rows
/// after a key, in key order, at most `limit` of them, and no more once
/// those before hold `maxBytes` of the row's stored JSON. The first row
/// always fits, so a reader that continues from the last key moves on.
///
/// The page's last key is found from the rows' sizes first, and only then
/// are the rows read: both stores tell a stored value's length without
/// reading it (SQLite's `length` of a blob reads the row's header, and
/// PostgreSQL's `octet_length` the value's header), so what the budget
/// leaves out is never loaded.
struct PageQuery {
    /// The table, and the columns the page returns.
    let table: String
    let columns: String
    /// The column naming the log's owner (a stream, a canvas).
    let owner: String
    /// The ordering column the page continues from.
    let key: String
    /// The column whose size counts against the budget.
    let sized: String

    static let events = PageQuery(table: "events", columns: "seq, id, type, json", owner: "stream", key: "seq", sized: "json")
    static let revisions = PageQuery(table: "revisions", columns: "rev, base_rev, command_id, actor, ts, ops, event_seq",
                                     owner: "canvas", key: "rev", sized: "ops")

    /// For SQLite, with its values bound.
    func sqlite(owner value: String, after: Int64, limit: Int, maxBytes: Int, db: SQLiteConnection) throws -> [[SQLValue]] {
        try db.query(sqliteText, [.text(value), .integer(after), .integer(Int64(limit)), .integer(Int64(max(1, maxBytes)))])
    }

    private var sqliteText: String {
        """
        SELECT \(columns) FROM \(table) WHERE \(owner) = ?1 AND \(key) > ?2 AND \(key) <= (
            SELECT max(\(key)) FROM (
                SELECT \(key), sum(size) OVER (ORDER BY \(key) ROWS UNBOUNDED PRECEDING) - size AS before
                FROM (SELECT \(key), length(\(sized)) AS size FROM \(table) WHERE \(owner) = ?1 AND \(key) > ?2 ORDER BY \(key) LIMIT ?3))
            WHERE before < ?4)
        ORDER BY \(key)
        """
    }

    /// For PostgreSQL, with its values bound.
    func postgres(owner value: String, after: Int64, limit: Int, maxBytes: Int) -> PostgresQuery {
        """
        SELECT \(unescaped: columns) FROM northstar.\(unescaped: table) WHERE \(unescaped: owner) = \(value) AND \(unescaped: key) > \(after)
        AND \(unescaped: key) <= (
            SELECT max(\(unescaped: key)) FROM (
                SELECT \(unescaped: key), sum(size) OVER (ORDER BY \(unescaped: key) ROWS UNBOUNDED PRECEDING) - size AS before
                FROM (SELECT \(unescaped: key), octet_length(\(unescaped: sized)) AS size FROM northstar.\(unescaped: table)
                      WHERE \(unescaped: owner) = \(value) AND \(unescaped: key) > \(after) ORDER BY \(unescaped: key) LIMIT \(Int64(limit))) AS page
            ) AS sized
            WHERE before < \(Int64(max(1, maxBytes))))
        ORDER BY \(unescaped: key)
        """
    }
}

extension PageQuery {
    /// How many rows of these stored sizes, in order, make a page within
    /// `maxBytes`: rows while those before them hold less, and always the
    /// first (for a table whose key is not one column, read in two steps).
    static func fitting(_ sizes: [Int], maxBytes: Int) -> Int {
        var before = 0
        for (index, size) in sizes.enumerated() {
            guard index == 0 || before < maxBytes else { return index }
            before += size
        }
        return sizes.count
    }
}
