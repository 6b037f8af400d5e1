/// The data directory or the database cannot be used: said at start, with
/// the path and the reason, before the port is bound.
public struct StoreOpenError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String

    public var description: String {
        "\(path): \(reason). Northstar needs to write its database there: fix the permissions or the mount, or choose another --data-dir"
    }
}
