import NIOCore

/// Work waiting for the store, in a line per tenant, the lines taking turns.
///
/// A store serves reads on a few connections (SQLite one, PostgreSQL its
/// pool), so reads wait for each other. In arrival order, one
/// tenant's burst (a hundred subscribers catching up on a long thread, each
/// reading page after page) would queue ahead of every other tenant's
/// reads, and a one-row read would wait for all of them. Taken from these
/// lines, the next read is the first of the next tenant with reads waiting:
/// another tenant's read waits for at most one read per tenant with reads
/// waiting, whatever any of them queued.
///
/// THREAD: a value; its owner holds it under a lock.
struct TenantLines<Item> {
    /// The items waiting, per tenant; a tenant with none has no entry.
    private var waiting: [String: CircularBuffer<Item>] = [:]
    /// Tenants with items waiting, in the order of their next turn.
    private var order = CircularBuffer<String>()

    /// Items waiting, every line's together.
    private(set) var count = 0

    /// Puts `item` at the end of the tenant's line ("" for the node's own work).
    mutating func append(_ item: Item, for tenant: String) {
        if waiting[tenant] == nil {
            waiting[tenant] = CircularBuffer()
            order.append(tenant)
        }
        waiting[tenant]!.append(item)
        count += 1
    }

    /// Takes out of the tenant's line the first item that `matches` (one
    /// that left before its turn), if it is still waiting.
    mutating func remove(from tenant: String, where matches: (Item) -> Bool) -> Item? {
        guard var line = waiting[tenant], let index = line.firstIndex(where: matches) else { return nil }
        let item = line.remove(at: index)
        count -= 1
        if line.isEmpty {
            waiting[tenant] = nil
            order.removeAll { $0 == tenant }
        } else {
            waiting[tenant] = line
        }
        return item
    }

    /// The first item of the tenant whose turn it is, who goes to the back
    /// of the turns if it has more; nil when nothing waits.
    mutating func next() -> Item? {
        guard let tenant = order.popFirst() else { return nil }
        let item = waiting[tenant]!.removeFirst()
        count -= 1
        if waiting[tenant]!.isEmpty {
            waiting[tenant] = nil
        } else {
            order.append(tenant)
        }
        return item
    }
}

extension TenantLines: Sendable where Item: Sendable {}
