import NIOConcurrencyHelpers

/// Tenant ids as metric labels, for operators who opt in
/// (`metrics.per_tenant`): the first `capacity` tenants seen keep their
/// own label, every later one is counted as `other`, so the number of
/// series stays bounded whatever the number of tenants.
///
/// Tenants keep their label until the node restarts: a label that moved
/// from one tenant to another would make its counters meaningless.
///
/// THREAD: any.
final class TenantLabels: Sendable {
    static let overflow = "other"

    let capacity: Int
    private let admitted = NIOLockedValueBox(Set<String>())

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// The label for `tenant`: itself while there is room, `other` after.
    func label(for tenant: String) -> String {
        admitted.withLockedValue { admitted in
            if admitted.contains(tenant) { return tenant }
            guard admitted.count < capacity else { return Self.overflow }
            admitted.insert(tenant)
            return tenant
        }
    }
}
