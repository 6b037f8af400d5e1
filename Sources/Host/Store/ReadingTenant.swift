/// Whose read the current task makes, for the store's turns between tenants
/// (`TenantLines`): a request's tenant once it is authenticated, a
/// subscription's while it catches up, "" for the node's own reads.
enum ReadingTenant {
    /// Set around work done for a tenant outside its request (a catch-up).
    @TaskLocal static var named: String?

    static var current: String { named ?? RequestFacts.current?.tenant ?? "" }
}
