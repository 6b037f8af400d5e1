import Foundation

/// The jwt plugin's config section (docs/configuration.md, "jwt").
struct JWTSettings {
    /// One verification key and the one algorithm it may be used with.
    struct Key {
        var kid: String
        var alg: String
        var secret: String?
        var pem: String?
    }

    var keys: [Key] = []
    var jwksFile: String?
    /// Keys fetched over HTTP(S) through the host's client, cached and
    /// refreshed on an unknown `kid`, at most once per `jwksMinRefreshSeconds`.
    var jwksURL: String?
    var jwksCacheSeconds: Double = 300
    var jwksMinRefreshSeconds: Double = 30
    var jwksTimeoutMilliseconds: UInt32 = 5000
    /// Algorithms accepted for keys from `jwks_file`.
    var jwksAlgorithms: Set<String> = []
    var devSecretFile: String?
    var issuer: String?
    var audience: String?
    var leewaySeconds: Int = 30
    var requireExp = true
    var tenantClaim = "tenant_id"
    var userClaim = "sub"
    var scopesClaim = "scope"
    var envClaim = "env"

    static let hmac: Set = ["HS256", "HS384", "HS512"]
    static let asymmetric: Set = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]

    /// Parses the section, refusing unknown keys and wrong types by name.
    init(json: [UInt8]) throws {
        guard let root = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any] else {
            throw ConfigProblem("the config section is not a JSON object")
        }
        let known: Set = ["keys", "jwks_file", "jwks_url", "jwks_cache_seconds", "jwks_min_refresh_seconds", "jwks_timeout_ms",
                          "jwks_algorithms", "dev_secret_file", "issuer", "audience", "leeway_seconds", "require_exp", "claims"]
        if let unknown = root.keys.sorted().first(where: { !known.contains($0) }) {
            throw ConfigProblem("\(unknown): unknown key (known: \(known.sorted().joined(separator: ", ")))")
        }
        for (index, entry) in try Self.array(root["keys"], "keys").enumerated() {
            guard let entry = entry as? [String: Any] else { throw ConfigProblem("keys[\(index)]: expected an object") }
            let unknown = Set(entry.keys).subtracting(["kid", "alg", "secret", "pem"])
            if let first = unknown.sorted().first { throw ConfigProblem("keys[\(index)].\(first): unknown key") }
            let key = Key(kid: try Self.string(entry["kid"], "keys[\(index)].kid") ?? "",
                          alg: try Self.string(entry["alg"], "keys[\(index)].alg") ?? "",
                          secret: try Self.string(entry["secret"], "keys[\(index)].secret"),
                          pem: try Self.string(entry["pem"], "keys[\(index)].pem"))
            guard JWTProvider.isSafeKid(key.kid) else {
                throw ConfigProblem("keys[\(index)].kid: required, letters, digits, '.', '_' or '-'")
            }
            if Self.hmac.contains(key.alg) {
                guard let secret = key.secret, secret.utf8.count >= 32 else {
                    throw ConfigProblem("keys[\(index)].secret: \(key.alg) needs a secret of at least 32 bytes")
                }
            } else if Self.asymmetric.contains(key.alg) && key.alg != "EdDSA" {
                guard key.pem != nil else { throw ConfigProblem("keys[\(index)].pem: \(key.alg) needs a PEM public key") }
            } else {
                throw ConfigProblem("keys[\(index)].alg: \"\(key.alg)\" is not one of HS256/384/512, RS256/384/512, PS256, ES256/384 (EdDSA keys come from jwks_file)")
            }
            keys.append(key)
        }
        jwksFile = try Self.absolutePath(root["jwks_file"], "jwks_file")
        jwksAlgorithms = Set(try Self.array(root["jwks_algorithms"], "jwks_algorithms").map { value in
            guard let alg = value as? String, Self.asymmetric.union(Self.hmac).contains(alg) else {
                throw ConfigProblem("jwks_algorithms: each entry is one of \(Self.asymmetric.union(Self.hmac).sorted().joined(separator: ", "))")
            }
            return alg
        })
        jwksURL = try Self.string(root["jwks_url"], "jwks_url")
        if let url = jwksURL, !(url.hasPrefix("https://") || url.hasPrefix("http://")) {
            throw ConfigProblem("jwks_url: must be an http:// or https:// URL")
        }
        jwksCacheSeconds = try Self.number(root["jwks_cache_seconds"], "jwks_cache_seconds", 1...86_400) ?? jwksCacheSeconds
        jwksMinRefreshSeconds = try Self.number(root["jwks_min_refresh_seconds"], "jwks_min_refresh_seconds", 0...3600) ?? jwksMinRefreshSeconds
        jwksTimeoutMilliseconds = UInt32(try Self.number(root["jwks_timeout_ms"], "jwks_timeout_ms", 100...60_000) ?? 5000)
        if jwksFile != nil || jwksURL != nil, jwksAlgorithms.isEmpty {
            throw ConfigProblem("jwks_algorithms: required with jwks_file or jwks_url (an explicit allow-list, e.g. [\"RS256\"])")
        }
        devSecretFile = try Self.absolutePath(root["dev_secret_file"], "dev_secret_file")
        issuer = try Self.string(root["issuer"], "issuer")
        audience = try Self.string(root["audience"], "audience")
        leewaySeconds = Int(try Self.number(root["leeway_seconds"], "leeway_seconds", 0...600) ?? Double(leewaySeconds))
        if let flag = root["require_exp"] {
            // JSON numbers bridge to Bool too; only a real boolean (objCType "c") counts.
            guard let number = flag as? NSNumber, String(cString: number.objCType) == "c" else {
                throw ConfigProblem("require_exp: true or false")
            }
            let value = number.boolValue
            requireExp = value
        }
        if let claims = root["claims"] {
            guard let claims = claims as? [String: Any] else { throw ConfigProblem("claims: expected an object") }
            if let first = Set(claims.keys).subtracting(["tenant", "user", "scopes", "env"]).sorted().first {
                throw ConfigProblem("claims.\(first): unknown key (known: tenant, user, scopes, env)")
            }
            tenantClaim = try Self.string(claims["tenant"], "claims.tenant") ?? tenantClaim
            userClaim = try Self.string(claims["user"], "claims.user") ?? userClaim
            scopesClaim = try Self.string(claims["scopes"], "claims.scopes") ?? scopesClaim
            envClaim = try Self.string(claims["env"], "claims.env") ?? envClaim
        }
        if keys.isEmpty, jwksFile == nil, jwksURL == nil, devSecretFile == nil {
            throw ConfigProblem("no keys: give keys, jwks_file, jwks_url or dev_secret_file")
        }
    }

    private static func string(_ value: Any?, _ path: String) throws -> String? {
        guard let value, !(value is NSNull) else { return nil }
        guard let text = value as? String else { throw ConfigProblem("\(path): expected a string") }
        return text
    }

    /// A file path from config: absolute only, since a relative one would
    /// depend on the folder the node was started from (`${data_dir}` is
    /// absolute by the time a plugin sees it).
    private static func absolutePath(_ value: Any?, _ path: String) throws -> String? {
        guard let text = try string(value, path) else { return nil }
        guard text.hasPrefix("/") else {
            throw ConfigProblem("\(path): \"\(text)\" is relative; give an absolute path, e.g. \"${data_dir}/...\"")
        }
        return text
    }

    private static func number(_ value: Any?, _ path: String, _ range: ClosedRange<Double>) throws -> Double? {
        guard let value, !(value is NSNull) else { return nil }
        // JSON booleans arrive as NSNumber too; their objCType is "c".
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c", range.contains(number.doubleValue) else {
            throw ConfigProblem("\(path): a number from \(Int(range.lowerBound)) to \(Int(range.upperBound))")
        }
        return number.doubleValue
    }

    private static func array(_ value: Any?, _ path: String) throws -> [Any] {
        guard let value, !(value is NSNull) else { return [] }
        guard let elements = value as? [Any] else { throw ConfigProblem("\(path): expected an array") }
        return elements
    }
}

/// A config problem, reported to the host as NS_ERR_CONFIG.
struct ConfigProblem: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
