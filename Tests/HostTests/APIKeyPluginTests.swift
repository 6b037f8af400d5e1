import Crypto
import Foundation
@testable import NorthstarHost
import Testing

/// The apikey plugin, written in C, loaded for real from the build folder.
@Suite struct APIKeyPluginTests {
    static let key = "nsk_test_0123456789abcdef"
    static var keyHash: String {
        SHA256.hash(data: Data(key.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    static func plugin(_ config: String) throws -> PluginInstance {
        let set = try PluginSet(config: try loadConfig(#"{"plugins": [{"path": "\#(TestPaths.plugin("libNorthstarAPIKey.so"))", "config": \#(config)}]}"#))
        return set.plugins[0]
    }

    static let goodConfig = #"""
        {"keys": [{"sha256": "\#(keyHash)", "tenant_id": "t_acme", "user_id": "bot", "env": "dev",
                   "scopes": ["chat:read", "chat:write"]}]}
        """#

    @Test("a configured key is accepted with its tenant, user, env and scopes")
    func accepts() throws {
        let plugin = try Self.plugin(Self.goodConfig)
        guard case .accepted(let claims) = try plugin.verify(Credential(source: .header, scheme: "ApiKey", value: Self.key)) else {
            Issue.record("not accepted")
            return
        }
        #expect(claims == ["tenant_id": "t_acme", "user_id": "bot", "env": "dev", "scopes": "chat:read chat:write"])
        // The scheme is case-insensitive.
        guard case .accepted = try plugin.verify(Credential(source: .header, scheme: "apikey", value: Self.key)) else {
            Issue.record("lower-case scheme not accepted")
            return
        }
    }

    @Test("an unknown key is rejected, another scheme is passed on")
    func rejectsAndPasses() throws {
        let plugin = try Self.plugin(Self.goodConfig)
        guard case .rejected = try plugin.verify(Credential(source: .header, scheme: "ApiKey", value: Self.key + "x")) else {
            Issue.record("wrong key not rejected")
            return
        }
        guard case .passed = try plugin.verify(Credential(source: .header, scheme: "Bearer", value: Self.key)) else {
            Issue.record("Bearer not passed")
            return
        }
    }

    @Test("bad config sections are refused with the key named")
    func badConfig() throws {
        let cases: [(String, String)] = [
            ("{}", "keys"),
            (#"{"keys": []}"#, "keys"),
            (#"{"keys": [{"sha256": "abc", "tenant_id": "t_a", "user_id": "u", "env": "dev", "scopes": []}]}"#, "sha256"),
            (#"{"keys": [{"sha256": "\#(Self.keyHash)", "user_id": "u", "env": "dev", "scopes": []}]}"#, "tenant_id"),
            (#"{"keys": [{"sha256": "\#(Self.keyHash)", "tenant_id": "t_a", "user_id": "u", "env": "dev", "scopes": "read"}]}"#, "scopes"),
            (#"{"keys": [{"sha256": "\#(Self.keyHash)", "tenant_id": "t_a", "user_id": "u", "env": "dev", "scopes": [], "extra": 1}]}"#, "unknown"),
            (#"{"keyz": []}"#, "unknown key"),
        ]
        for (config, mention) in cases {
            do {
                _ = try Self.plugin(config)
                Issue.record("accepted \(config)")
            } catch let error as PluginLoadError {
                #expect(error.rule == .configRejected)
                #expect(error.message.contains(mention), "\(error.message) should mention \(mention)")
            }
        }
    }
}
