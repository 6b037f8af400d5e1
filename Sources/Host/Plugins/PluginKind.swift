import NorthstarPluginKit
import PluginAPI

/// The three kinds of plugin, as `ns_plugin_kind` numbers them.
public enum PluginKind: Int32, Sendable, CustomStringConvertible {
    case transport = 1
    case storage = 2
    case auth = 3

    public var description: String {
        switch self {
        case .transport: "transport"
        case .storage: "storage"
        case .auth: "auth"
        }
    }

    /// The smallest vtable `struct_size` accepted at ABI 1.0.
    var minimumVTableSize: Int {
        switch self {
        case .transport: Int(NS_TRANSPORT_VTABLE_MIN_SIZE)
        case .storage: Int(NS_STORAGE_VTABLE_MIN_SIZE)
        case .auth: Int(NS_AUTH_VTABLE_MIN_SIZE)
        }
    }

    /// The vtable's `struct_size` at each vtable minor this host knows
    /// (index: the minor). Exact: vtables of different kinds differ in size,
    /// so a vtable declared as the wrong kind is caught here.
    var vtableSizes: [Int] {
        switch self {
        case .transport: [Int(NS_TRANSPORT_VTABLE_MIN_SIZE), Int(NS_TRANSPORT_VTABLE_SIZE_1)]
        case .storage: [Int(NS_STORAGE_VTABLE_MIN_SIZE), Int(NS_STORAGE_VTABLE_SIZE_1)]
        case .auth: [Int(NS_AUTH_VTABLE_MIN_SIZE)]
        }
    }

    static let all: [PluginKind] = [.transport, .storage, .auth]

    /// The names of the mandatory vtable entries that are NULL in `vtable`
    /// (read at its own size: mandatory entries are all 1.0 ones).
    func missingEntries(in vtable: UnsafeRawPointer) -> [String] {
        switch self {
        case .auth:
            guard let table = PluginStruct.copy(vtable.assumingMemoryBound(to: ns_auth_vtable.self),
                                                minimumSize: minimumVTableSize) else { return ["verify"] }
            return table.verify == nil ? ["verify"] : []
        case .storage:
            guard let t = PluginStruct.copy(vtable.assumingMemoryBound(to: ns_storage_vtable.self),
                                            minimumSize: minimumVTableSize) else { return ["put_open"] }
            let entries: [(String, Bool)] = [
                ("put_open", t.put_open != nil), ("put_write", t.put_write != nil),
                ("put_finish", t.put_finish != nil), ("put_abort", t.put_abort != nil),
                ("get_open", t.get_open != nil), ("get_read", t.get_read != nil),
                ("get_close", t.get_close != nil), ("head", t.head != nil),
                ("list", t.list != nil), ("remove", t.remove != nil),
            ]
            return entries.filter { !$0.1 }.map(\.0)
        case .transport:
            guard let t = PluginStruct.copy(vtable.assumingMemoryBound(to: ns_transport_vtable.self),
                                            minimumSize: minimumVTableSize) else { return ["on_request"] }
            let entries: [(String, Bool)] = [
                ("on_request", t.on_request != nil), ("on_exchange_closed", t.on_exchange_closed != nil),
            ]
            return entries.filter { !$0.1 }.map(\.0)
        }
    }
}
