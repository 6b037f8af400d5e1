import Testing
@testable import NorthstarHost

extension UserConnections {
    /// Whether a claim for the context was counted.
    func admits(_ context: RequestContext) -> Bool { claim(context) == nil }
}

/// The transport connections each user and tenant holds
/// (`limits.max_connections_per_user`, `limits.max_connections_per_tenant`).
@Suite struct UserConnectionsTests {
    private func context(tenant: String = "t_alpha", env: String = "dev", user: String = "alice") -> RequestContext {
        RequestContext(tenant: TenantID(tenant)!, env: env, userID: user, scopes: ["read"], requestID: "r", traceparent: "t")
    }

    @Test("a user claims up to the limit, the next is refused and counts nothing, and a release makes room")
    func claimUpToTheLimit() {
        let connections = UserConnections(limit: 2)
        let alice = context()
        #expect(connections.admits(alice) && connections.admits(alice))
        #expect(!connections.admits(alice))
        #expect(connections.count(for: alice) == 2)
        connections.release(alice)
        #expect(connections.count(for: alice) == 1)
        #expect(connections.admits(alice))
        #expect(!connections.admits(alice))
    }

    @Test("the same user id in another tenant or env, and another user, are counted apart")
    func identitiesAreCountedApart() {
        let connections = UserConnections(limit: 1)
        let identities = [context(), context(tenant: "t_beta"), context(env: "staging"), context(user: "bob")]
        for identity in identities { #expect(connections.admits(identity)) }
        for identity in identities { #expect(!connections.admits(identity)) }
        #expect(connections.users == 4)
        connections.release(identities[1])
        #expect(connections.admits(identities[1]))
        #expect(!connections.admits(identities[0]))
    }

    @Test("a user with no connection left holds no entry, and a release without a claim counts nothing")
    func releasesLeaveNothingBehind() {
        let connections = UserConnections(limit: 3)
        let alice = context()
        connections.release(alice)
        #expect(connections.count(for: alice) == 0 && connections.users == 0)
        #expect(connections.admits(alice))
        connections.release(alice)
        connections.release(alice)
        #expect(connections.users == 0)
        #expect(connections.admits(alice) && connections.admits(alice) && connections.admits(alice))
    }

    @Test("many tasks claiming at once for one user get exactly the limit")
    func concurrentClaimsStopAtTheLimit() async {
        let connections = UserConnections(limit: 100)
        let alice = context()
        let granted = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<32 {
                group.addTask { (0..<20).filter { _ in connections.admits(alice) }.count }
            }
            return await group.reduce(0, +)
        }
        #expect(granted == 100 && connections.count(for: alice) == 100)
    }

    @Test("a principal gives its user's connection back when its handle is released, and only then")
    func principalReleaseGivesTheConnectionBack() {
        let connections = UserConnections(limit: 1)
        let alice = context()
        #expect(connections.admits(alice))
        let handle = PrincipalHandles.lend(Principal(alice, countedIn: connections))
        #expect(!connections.admits(alice))
        PrincipalHandles.release(handle)
        #expect(connections.count(for: alice) == 0)
        PrincipalHandles.release(handle)  // twice: counted once
        #expect(connections.count(for: alice) == 0)
        #expect(connections.admits(alice))
    }

    @Test("a tenant's users together stop at the tenant's limit, which names the tenant; its users' counts are untouched and another tenant is not counted")
    func tenantLimit() {
        let connections = UserConnections(limit: 2, tenantLimit: 3)
        let (alice, bob, carol) = (context(), context(user: "bob"), context(user: "carol"))
        #expect(connections.admits(alice) && connections.admits(alice) && connections.admits(bob))
        #expect(connections.claim(carol) == .tenant)
        #expect(connections.claim(alice) == .user)  // the user's own limit is checked first
        #expect(connections.count(for: carol) == 0 && connections.tenantCount(for: carol) == 3)
        // The same tenant in another env is the same tenant; another tenant has its own count.
        #expect(connections.claim(context(env: "staging", user: "dave")) == .tenant)
        #expect(connections.admits(context(tenant: "t_beta")))
        #expect(connections.tenants == 2 && connections.users == 3)
        connections.release(bob)
        #expect(connections.admits(carol))
        for held in [alice, alice, carol, context(tenant: "t_beta")] { connections.release(held) }
        #expect(connections.tenants == 0 && connections.users == 0 && connections.total == 0)
    }
}
