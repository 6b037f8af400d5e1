import Foundation
import PluginAPI

extension Node {
    /// What `/console/status` shows: this node, its plugins, its connections,
    /// its health, its hottest streams (with their tenant: the console is for
    /// admins only) and the errors it answered lately.
    func consoleStatus() async -> JSONValue {
        let uptime = Int(Date().timeIntervalSince(startedAt))
        var hot: [JSONValue] = []
        for entry in streamRates.hottest(10) {
            // "chat:th_…", "canvas:cv_…": the resource after the kind names its tenant.
            let id = entry.stream.rawValue.split(separator: ":", maxSplits: 1).last.map(String.init) ?? ""
            let tenant = (try? await kernel.store.resource(id: id))?.tenant
            hot.append(.object([
                "stream": .string(entry.stream.rawValue), "tenant": tenant.map(JSONValue.string) ?? .null,
                "last_minute": .number(Double(entry.lastMinute)), "this_minute": .number(Double(entry.thisMinute)),
                "subscribers": .number(Double(kernel.hub.subscriberCount(entry.stream))),
            ]))
        }
        let errors: [JSONValue] = recentErrors.snapshot.map { code, entry in
            .object(["code": .string(code), "status": .number(Double(entry.status)), "count": .number(Double(entry.count)),
                     "route": .string(entry.route), "last_at": .string(ISO8601DateFormatter().string(from: entry.lastAt))])
        }
        let plugins: [JSONValue] = self.plugins.plugins.map { plugin in
            .object(["name": .string(plugin.name), "kind": .string("\(plugin.kind)"), "version": .string(plugin.library.version),
                     "abi": .string(plugin.library.abiVersion), "state": .string(readiness.current == .starting ? "starting" : "started")])
        }
        let stamp = ISO8601DateFormatter()
        // Every node of a cluster, as each last said; one node alone is its own cluster.
        var cluster: [JSONValue] = [.object([
            "id": .string(presence?.nodeID ?? "this"), "address": .string("\(config.listen)"), "version": .string(NorthstarVersion.current),
            "state": .string(readiness.current.rawValue), "started_at": .string(stamp.string(from: startedAt)),
            "seen_seconds_ago": .number(0), "this": .bool(true),
        ])]
        if let presence, let members = try? await presence.members(), !members.isEmpty {
            cluster = members.map { member in
                .object(["id": .string(member.id), "address": .string(member.address), "version": .string(member.version),
                         "state": .string(member.state), "started_at": .string(stamp.string(from: member.startedAt)),
                         "seen_seconds_ago": .number(Double(Int(Date().timeIntervalSince(member.seenAt)))),
                         "this": .bool(member.id == presence.nodeID)])
            }
        }
        let storageErrors = recentErrors.snapshot.filter { $0.code.hasPrefix("storage_") || $0.code == "checksum_mismatch" }
        return .object([
            "node": .object([
                "version": .string(NorthstarVersion.current), "abi": .string("\(NS_ABI_MAJOR).\(NS_ABI_MINOR)"),
                "env": .string(config.env), "state": .string(readiness.current.rawValue),
                "started_at": .string(ISO8601DateFormatter().string(from: startedAt)), "uptime_seconds": .number(Double(uptime)),
            ]),
            "connections": .object([
                "open": .number(Double(connections.open)), "live_subscribers": .number(Double(kernel.hub.totalSubscribers)),
                "streams_with_subscribers": .number(Double(kernel.hub.streamsWithSubscribers)),
                "websockets_open": .number(Double(liveSockets.count)),
                "transport_exchanges_open": .number(Double(openExchanges.unfinished.count)),
            ]),
            "plugins": .array(plugins),
            "health": .object([
                "store": .string(kernel.store.health.current.map { "\($0.rawValue)" } ?? "ok"),
                "storage": .string(kernel.artifacts.backend.map(\.name).map { name in
                    storageErrors.isEmpty ? "\(name): ok" : "\(name): \(storageErrors.count) error code(s) lately, last \(storageErrors[0].code)"
                } ?? "none configured"),
                "drain": .string(readiness.current == .draining ? "draining" : "serving"),
            ]),
            "cluster": .array(cluster),
            "hot_streams": .array(hot),
            "recent_errors": .array(errors),
        ])
    }
}

/// The version of this build of Northstar.
public enum NorthstarVersion {
    public static let current = "0.9.0"
}
