import Foundation

/// The auth contract, checked by calling the plugin's `verify` (and `mint`,
/// when it has one) as the host's auth chain does: hostile credentials are
/// never accepted and never crash it; a credential it minted comes back
/// with the claims it was minted with, and any change to it is refused.
/// With `--credential`, a credential the plugin must accept is checked too.
struct AuthConformance {
    let plugin: PluginInstance
    /// `Authorization`-style text the plugin must accept, when given.
    let validCredential: String?

    func run() async -> [ConformanceCheck] {
        var run = ConformanceRun()
        await run.check("hostile credentials are rejected or passed, never accepted") {
            let long = String(repeating: "A", count: 1 << 20)
            let hostile: [(String, String)] = [
                ("Bearer", ""), ("Bearer", "not-a-token"), ("Bearer", "a.b.c"), ("Bearer", "..."),
                ("Bearer", long), ("Bearer", "eyJhbGciOiJub25lIn0.eyJ0ZW5hbnRfaWQiOiJ0X3gifQ."), ("Bearer", "\u{0}\u{1}\u{7f}"),
                ("Basic", "dXNlcjpwYXNz"), ("", "x"), ("Bearer", "ключ🔑"), ("ApiKey", String(repeating: "%00", count: 64)),
            ]
            for (scheme, value) in hostile {
                let verdict = try verify(Credential(source: .header, scheme: scheme, value: value))
                if case .accepted = verdict {
                    throw ContractBroken("accepted the hostile credential \"\(scheme) \(value.prefix(40))\"")
                }
            }
        }
        if plugin.canMint {
            let claims = ["tenant_id": "t_conformance", "user_id": "u_conformance", "env": "conformance", "scopes": "read write"]
            await run.check("a minted credential verifies with the claims it was minted with") {
                let token = try plugin.mint(claims: claims, ttlSeconds: 300)
                guard case .accepted(let got) = try verify(Credential(source: .header, scheme: "Bearer", value: token)) else {
                    throw ContractBroken("its own minted credential was not accepted")
                }
                for (name, value) in claims where got[name] != value {
                    throw ContractBroken("claim \(name) came back as \(got[name] ?? "nothing"), minted as \(value)")
                }
                guard let expires = got["expires_at"].flatMap(Int64.init), expires > Int64(Date().timeIntervalSince1970) else {
                    throw ContractBroken("no expires_at claim in the future (the host ends streams at a credential's expiry)")
                }
            }
            await run.check("a minted credential changed by one character is refused") {
                let token = try plugin.mint(claims: claims, ttlSeconds: 300)
                for index in [token.count / 2, token.count - 2] {
                    var characters = Array(token)
                    characters[index] = characters[index] == "A" ? "B" : "A"
                    if case .accepted = try verify(Credential(source: .header, scheme: "Bearer", value: String(characters))) {
                        throw ContractBroken("accepted its minted credential with character \(index) changed")
                    }
                }
            }
        }
        if let validCredential {
            await run.check("the given credential is accepted with a tenant, a user and an env") {
                guard let credential = Credential(authorization: validCredential) else {
                    throw ContractBroken("--credential must read \"<scheme> <value>\"")
                }
                guard case .accepted(let got) = try verify(credential) else { throw ContractBroken("the given credential was not accepted") }
                for name in ["tenant_id", "user_id", "env"] where (got[name] ?? "").isEmpty {
                    throw ContractBroken("accepted without a \(name) claim")
                }
            }
        }
        await run.check("verify is safe to call from many threads at once") {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<32 {
                    group.addTask { _ = try verify(Credential(source: .header, scheme: "Bearer", value: "token-\(index)")) }
                }
                try await group.waitForAll()
            }
        }
        return run.checks
    }

    private func verify(_ credential: Credential) throws -> AuthVerdict {
        try plugin.verify(credential)
    }
}
