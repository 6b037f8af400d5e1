@testable import NorthstarHost
import Testing

/// Tenant labels for `metrics.per_tenant`: bounded, and stable once given.
@Suite struct TenantLabelsTests {
    @Test("the first tenants keep their label; later ones are other")
    func capped() {
        let labels = TenantLabels(capacity: 2)
        #expect(labels.label(for: "t_a") == "t_a")
        #expect(labels.label(for: "t_b") == "t_b")
        #expect(labels.label(for: "t_c") == "other")
        #expect(labels.label(for: "t_a") == "t_a")
        #expect(labels.label(for: "t_c") == "other")
    }

    @Test("many tenants from many threads never pass the cap")
    func concurrent() async {
        let labels = TenantLabels(capacity: 50)
        let given = await withTaskGroup(of: String.self, returning: Set<String>.self) { group in
            for index in 0..<2000 { group.addTask { labels.label(for: "t_\(index % 400)") } }
            return await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(given.count == 51 && given.contains("other"))
    }
}
