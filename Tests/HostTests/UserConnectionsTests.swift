import Testing
@testable import NorthstarHost

/// The transport connections each user holds (`limits.max_connections_per_user`).
@Suite struct UserConnectionsTests {
    private func context(tenant: String = "t_alpha", env: String = "dev", user: String = "alice") -> RequestContext {
        RequestContext(tenant: TenantID(tenant)!, env: env, userID: user, scopes: ["read"], requestID: "r", traceparent: "t")
    }

    @Test("a user claims up to the limit, the next is refused and counts nothing, and a release makes room")
    func claimUpToTheLimit() {
        let connections = UserConnections(limit: 2)
        let alice = context()
        #expect(connections.claim(alice) && connections.claim(alice))
        #expect(!connections.claim(alice))
        #expect(connections.count(for: alice) == 2)
        connections.release(alice)
        #expect(connections.count(for: alice) == 1)
        #expect(connections.claim(alice))
        #expect(!connections.claim(alice))
    }

    @Test("the same user id in another tenant or env, and another user, are counted apart")
    func identitiesAreCountedApart() {
        let connections = UserConnections(limit: 1)
        let identities = [context(), context(tenant: "t_beta"), context(env: "staging"), context(user: "bob")]
        for identity in identities { #expect(connections.claim(identity)) }
        for identity in identities { #expect(!connections.claim(identity)) }
        #expect(connections.users == 4)
        connections.release(identities[1])
        #expect(connections.claim(identities[1]))
        #expect(!connections.claim(identities[0]))
    }

    @Test("a user with no connection left holds no entry, and a release without a claim counts nothing")
    func releasesLeaveNothingBehind() {
        let connections = UserConnections(limit: 3)
        let alice = context()
        connections.release(alice)
        #expect(connections.count(for: alice) == 0 && connections.users == 0)
        #expect(connections.claim(alice))
        connections.release(alice)
        connections.release(alice)
        #expect(connections.users == 0)
        #expect(connections.claim(alice) && connections.claim(alice) && connections.claim(alice))
    }

    @Test("many tasks claiming at once for one user get exactly the limit")
    func concurrentClaimsStopAtTheLimit() async {
        let connections = UserConnections(limit: 100)
        let alice = context()
        let granted = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<32 {
                group.addTask { (0..<20).filter { _ in connections.claim(alice) }.count }
            }
            return await group.reduce(0, +)
        }
        #expect(granted == 100 && connections.count(for: alice) == 100)
    }

    @Test("a principal gives its user's connection back when its handle is released, and only then")
    func principalReleaseGivesTheConnectionBack() {
        let connections = UserConnections(limit: 1)
        let alice = context()
        #expect(connections.claim(alice))
        let handle = PrincipalHandles.lend(Principal(alice, countedIn: connections))
        #expect(!connections.claim(alice))
        PrincipalHandles.release(handle)
        #expect(connections.count(for: alice) == 0)
        PrincipalHandles.release(handle)  // twice: counted once
        #expect(connections.count(for: alice) == 0)
        #expect(connections.claim(alice))
    }
}
