import Foundation
import JWTKit
import NorthstarPluginKit
import PluginAPI

/// Verifies JWTs (HS*, RS*, PS256, ES*, EdDSA) and, with a dev secret, mints them.
///
/// A token is checked in this order, and the first failure rejects it:
/// its header (JSON, `alg` not `none` and allowed for its key, a `kid` of safe
/// characters naming a known key), its signature, then `exp`/`nbf`/`iat`
/// with leeway, `iss` and `aud`, and finally the mapped claims exist.
final class JWTProvider: AuthProvider, @unchecked Sendable {
    static let name = "jwt"
    static let version = "1.0.0"
    static let summary = "JSON Web Tokens: HMAC, RSA, RSA-PSS, ECDSA and EdDSA keys from config, a JWKS file or a dev secret"

    private let settings: JWTSettings
    private let keys: JWTKeyCollection
    /// kid -> the one algorithm that key may verify: configured keys, the dev
    /// key and the JWKS file's, which never change.
    private let fixedAlgorithms: [String: String]
    /// The same for keys from `jwks_url`, replaced by each refresh.
    private let remote = NSLock()
    private var remoteAlgorithms: [String: String] = [:]
    private var lastFetchAttempt: Date?
    private var lastFetchSuccess: Date?
    private let host: HostLink

    init(config: [UInt8], host: HostLink) throws {
        do {
            settings = try JWTSettings(json: config)
        } catch let problem as ConfigProblem {
            throw PluginFailure.config(problem.message)
        }
        self.host = host
        var algorithms: [String: String] = [:]
        let collection = JWTKeyCollection()
        do {
            if let file = settings.devSecretFile {
                let secret = try Self.loadOrCreateSecret(at: file)
                try blocking { await collection.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256, kid: "dev") }
                algorithms["dev"] = "HS256"
            }
            for key in settings.keys {
                try Self.add(key, to: collection)
                algorithms[key.kid] = key.alg
            }
            if let file = settings.jwksFile {
                let json = try String(contentsOfFile: file, encoding: .utf8)
                let jwks = try JSONDecoder().decode(JWKS.self, from: Data(json.utf8))
                try blocking { try await collection.add(jwks: jwks) }
                for jwk in jwks.keys {
                    guard let kid = jwk.keyIdentifier?.string, Self.isSafeKid(kid) else { continue }
                    let alg = jwk.algorithm?.rawValue ?? ""
                    // A JWKS key is usable only with an allow-listed algorithm.
                    if settings.jwksAlgorithms.contains(alg) { algorithms[kid] = alg }
                }
            }
        } catch let failure as PluginFailure {
            throw failure
        } catch {
            throw PluginFailure.config("could not load keys: \(error)")
        }
        self.keys = collection
        self.fixedAlgorithms = algorithms
        if settings.jwksURL != nil {
            guard host.canFetch else { throw PluginFailure.config("jwks_url: this host has no http_fetch (ABI 1.1 or later needed)") }
            do {
                try refreshRemoteKeys()
            } catch {
                // Start anyway: verify retries (bounded), and answers 503 while the key server is down.
                host.log(ns_log_level(NS_LOG_WARNING), "jwks_url: first fetch failed, will retry on demand: \((error as? PluginFailure)?.message ?? "\(error)")")
            }
        }
    }

    /// The algorithm `kid` may verify, refreshing `jwks_url` keys when the
    /// cache is stale or the kid is unknown, at most once per
    /// `jwks_min_refresh_seconds`.
    private func algorithm(for kid: String) throws -> String? {
        if let fixed = fixedAlgorithms[kid] { return fixed }
        guard settings.jwksURL != nil else { return nil }
        remote.lock()
        defer { remote.unlock() }
        let now = Date()
        let stale = lastFetchSuccess.map { now.timeIntervalSince($0) > settings.jwksCacheSeconds } ?? true
        if remoteAlgorithms[kid] == nil || stale,
           lastFetchAttempt.map({ now.timeIntervalSince($0) >= settings.jwksMinRefreshSeconds }) ?? true {
            do {
                try fetchRemoteKeys()
            } catch where remoteAlgorithms[kid] == nil {
                throw error
            } catch {
                // A stale cache still verifies the kids it knows while the key server is down.
                host.log(ns_log_level(NS_LOG_WARNING), "jwks_url: refresh failed, using cached keys")
            }
        }
        return remoteAlgorithms[kid]
    }

    private func refreshRemoteKeys() throws {
        remote.lock()
        defer { remote.unlock() }
        try fetchRemoteKeys()
    }

    /// Fetches `jwks_url` and replaces the remote keys. Caller holds `remote`.
    private func fetchRemoteKeys() throws {
        guard let url = settings.jwksURL else { return }
        lastFetchAttempt = Date()
        let response = try host.fetch(url, timeoutMilliseconds: settings.jwksTimeoutMilliseconds, maxBytes: 1 << 20)
        guard response.status == 200 else {
            throw PluginFailure(status: Int32(NS_ERR_UNAVAILABLE), message: "jwks_url answered HTTP \(response.status)")
        }
        let jwks: JWKS
        do {
            jwks = try JSONDecoder().decode(JWKS.self, from: Data(response.body))
        } catch {
            throw PluginFailure(status: Int32(NS_ERR_UNAVAILABLE), message: "jwks_url did not return a JWKS document")
        }
        var fetched: [String: String] = [:]
        var usable: [JWK] = []
        for jwk in jwks.keys {
            guard let kid = jwk.keyIdentifier?.string, Self.isSafeKid(kid), fixedAlgorithms[kid] == nil,
                  let alg = jwk.algorithm?.rawValue, settings.jwksAlgorithms.contains(alg) else { continue }
            fetched[kid] = alg
            usable.append(jwk)
        }
        let collection = keys, published = JWKS(keys: usable)
        try blocking { try await collection.add(jwks: published) }
        remoteAlgorithms = fetched  // kids no longer published stop verifying
        lastFetchSuccess = Date()
        host.log(ns_log_level(NS_LOG_INFO), "jwks_url: \(fetched.count) keys loaded")
    }

    func verify(_ credential: AuthCredential) throws -> AuthResult {
        guard credential.scheme.lowercased() == "bearer" else { return .pass }
        let token = credential.value
        let header: [String: Any]
        do {
            header = try Self.header(of: token)
        } catch {
            return .reject(reason: "malformed token")
        }
        // RFC 7515 4.1.11: a `crit` header names extensions the verifier must
        // understand. This verifier understands none, so any is refused.
        guard header["crit"] == nil else { return .reject(reason: "crit header names an unsupported extension") }
        guard let alg = header["alg"] as? String, alg.lowercased() != "none" else {
            return .reject(reason: "alg none or missing")
        }
        let kid: String
        if let given = header["kid"] {
            guard let text = given as? String, Self.isSafeKid(text) else { return .reject(reason: "kid is not a safe identifier") }
            kid = text
        } else if settings.jwksURL == nil, fixedAlgorithms.count == 1, let only = fixedAlgorithms.keys.first {
            kid = only
        } else {
            return .reject(reason: "no kid and several keys")
        }
        guard let allowed = try algorithm(for: kid) else { return .reject(reason: "unknown kid") }
        guard allowed == alg else { return .reject(reason: "alg \(alg) is not allowed for this key") }

        let claims: DynamicClaims
        do {
            claims = try blocking { [keys] in try await keys.verify(token, as: DynamicClaims.self) }
        } catch {
            return .reject(reason: "signature or payload invalid")
        }
        return check(claims.values)
    }

    /// Times, issuer, audience and the mapped claims.
    private func check(_ values: [String: JSONScalar]) -> AuthResult {
        let now = Date().timeIntervalSince1970
        let leeway = Double(settings.leewaySeconds)
        // RFC 7519 NumericDates: a number when present. A string, or a number
        // past year 9999, is refused rather than skipped or converted.
        var times: [String: Double] = [:]
        for name in ["exp", "nbf", "iat"] {
            guard let value = values[name] else { continue }
            guard let seconds = value.number, seconds.isFinite, (0...Self.latestNumericDate).contains(seconds) else {
                return .reject(reason: "\(name) is not a NumericDate")
            }
            times[name] = seconds
        }
        let exp = times["exp"]
        if settings.requireExp, exp == nil { return .reject(reason: "no exp") }
        if let exp, now > exp + leeway { return .reject(reason: "expired") }
        if let nbf = times["nbf"], now + leeway < nbf { return .reject(reason: "not yet valid") }
        if let iat = times["iat"], now + leeway < iat { return .reject(reason: "issued in the future") }
        if let issuer = settings.issuer, values["iss"]?.string != issuer { return .reject(reason: "wrong issuer") }
        if let audience = settings.audience, !(values["aud"]?.strings.contains(audience) ?? false) {
            return .reject(reason: "wrong audience")
        }
        guard let tenant = values[settings.tenantClaim]?.string, let user = values[settings.userClaim]?.string else {
            return .reject(reason: "missing tenant or user claim")
        }
        var claims = ["tenant_id": tenant, "user_id": user]
        if let env = values[settings.envClaim]?.string { claims["env"] = env }
        if let scopes = values[settings.scopesClaim]?.strings { claims["scopes"] = scopes.joined(separator: " ") }
        if let exp { claims["expires_at"] = String(Int64(exp)) }
        return .accept(claims)
    }

    /// 9999-12-31T23:59:59Z: the last NumericDate accepted, well inside Int64.
    static let latestNumericDate: Double = 253_402_300_799

    func mint(claims: [String: String], ttlSeconds: Int64) throws -> String {
        guard fixedAlgorithms["dev"] != nil else {
            throw PluginFailure(status: Int32(NS_ERR_UNSUPPORTED),
                                message: "minting needs dev_secret_file; production tokens come from your identity provider")
        }
        let now = Int64(Date().timeIntervalSince1970)
        var values: [String: JSONScalar] = ["iat": .number(Double(now)), "exp": .number(Double(now + ttlSeconds))]
        if let issuer = settings.issuer { values["iss"] = .string(issuer) }
        if let audience = settings.audience { values["aud"] = .string(audience) }
        values[settings.tenantClaim] = claims["tenant_id"].map(JSONScalar.string)
        values[settings.userClaim] = claims["user_id"].map(JSONScalar.string)
        values[settings.envClaim] = claims["env"].map(JSONScalar.string)
        values[settings.scopesClaim] = claims["scopes"].map(JSONScalar.string)
        let payload = DynamicClaims(values: values)
        return try blocking { [keys] in try await keys.sign(payload, kid: "dev") }
    }

    /// The kid characters we accept: no '/', '..' or anything a path could use.
    static func isSafeKid(_ kid: String) -> Bool {
        !kid.isEmpty && kid.count <= 128 && kid.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
            && !kid.contains("..")
    }

    /// The decoded header of a compact JWS; throws when it is not three parts or not JSON.
    static func header(of token: String) throws -> [String: Any] {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let data = base64URLDecode(String(parts[0])),
              let header = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ConfigProblem("malformed")
        }
        return header
    }

    static func base64URLDecode(_ text: String) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
    }

    /// Adds one configured key to the collection.
    static func add(_ key: JWTSettings.Key, to collection: JWTKeyCollection) throws {
        let kid = JWKIdentifier(string: key.kid)
        switch key.alg {
        case "HS256", "HS384", "HS512":
            let digest: DigestAlgorithm = key.alg == "HS256" ? .sha256 : key.alg == "HS384" ? .sha384 : .sha512
            let hmac = HMACKey(from: key.secret ?? "")
            try blocking { await collection.add(hmac: hmac, digestAlgorithm: digest, kid: kid) }
        case "RS256", "RS384", "RS512":
            let rsa = try Insecure.RSA.PublicKey(pem: key.pem ?? "")
            let digest: DigestAlgorithm = key.alg == "RS256" ? .sha256 : key.alg == "RS384" ? .sha384 : .sha512
            try blocking { await collection.add(rsa: rsa, digestAlgorithm: digest, kid: kid) }
        case "PS256":
            let rsa = try Insecure.RSA.PublicKey(pem: key.pem ?? "")
            try blocking { await collection.add(pss: rsa, digestAlgorithm: .sha256, kid: kid) }
        case "ES256":
            let ec = try ES256PublicKey(pem: key.pem ?? "")
            try blocking { await collection.add(ecdsa: ec, kid: kid) }
        case "ES384":
            let ec = try ES384PublicKey(pem: key.pem ?? "")
            try blocking { await collection.add(ecdsa: ec, kid: kid) }
        default:
            throw PluginFailure.config("unsupported alg \(key.alg)")
        }
    }

    /// Reads the dev secret, or creates it once (0600) so no secret is ever in the repository.
    static func loadOrCreateSecret(at path: String) throws -> String {
        if let existing = FileManager.default.contents(atPath: path) {
            let secret = String(decoding: existing, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard secret.utf8.count >= 32 else { throw PluginFailure.config("dev_secret_file \(path) holds fewer than 32 bytes") }
            return secret
        }
        var bytes = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for index in bytes.indices { bytes[index] = UInt8.random(in: .min ... .max, using: &generator) }
        let secret = bytes.map { String(format: "%02x", $0) }.joined()
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory.isEmpty ? "." : directory, withIntermediateDirectories: true)
        let temporary = "\(path).tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(secret.utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw PluginFailure.config("dev_secret_file: cannot write \(path)")
        }
        // rename() is atomic: two nodes starting at once keep one secret.
        if link(temporary, path) != 0 {
            unlink(temporary)
            return try loadOrCreateSecret(at: path)
        }
        unlink(temporary)
        return secret
    }
}
