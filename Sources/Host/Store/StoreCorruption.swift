/// A row that does not hold what its column promises: reported, never
/// replaced by a default (an empty id or a zero revision would be wrong
/// data served as right).
struct StoreCorruption: Error, CustomStringConvertible {
    let column: String
    let why: String

    var description: String { "the store holds a bad value in \(column): \(why)" }
}

extension Array where Element == SQLValue {
    /// The text in `index`, or `StoreCorruption` naming `column`.
    func text(_ index: Int, _ column: String) throws -> String {
        guard index < count, let value = self[index].text else { throw StoreCorruption(column: column, why: "not text") }
        return value
    }

    /// The integer in `index`, or `StoreCorruption` naming `column`.
    func integer(_ index: Int, _ column: String) throws -> Int64 {
        guard index < count, let value = self[index].integer else { throw StoreCorruption(column: column, why: "not an integer") }
        return value
    }

    /// The bytes in `index` (a blob, or text as UTF-8), or `StoreCorruption` naming `column`.
    func blob(_ index: Int, _ column: String) throws -> [UInt8] {
        guard index < count, let value = self[index].blob else { throw StoreCorruption(column: column, why: "not bytes") }
        return value
    }
}
