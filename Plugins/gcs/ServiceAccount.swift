import _CryptoExtras
import Foundation
import NorthstarCloud
import NorthstarPluginKit

/// A Google service-account key: signs the JWT that is exchanged for an
/// access token (RFC 7523, as Google's OAuth 2.0 server expects it).
struct ServiceAccount: Sendable {
    let clientEmail: String
    let tokenURI: String
    let key: _RSA.Signing.PrivateKey

    init(file: String) throws {
        guard let data = FileManager.default.contents(atPath: file),
              let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw CloudFailure.config("credentials_file: cannot read \(file) as JSON")
        }
        guard let email = object["client_email"] as? String, let pem = object["private_key"] as? String else {
            throw CloudFailure.config("credentials_file: a service-account key needs client_email and private_key")
        }
        do {
            key = try _RSA.Signing.PrivateKey(pemRepresentation: pem)
        } catch {
            throw CloudFailure.config("credentials_file: private_key is not an RSA key in PEM")
        }
        clientEmail = email
        tokenURI = object["token_uri"] as? String ?? "https://oauth2.googleapis.com/token"
    }

    /// The signed assertion: RS256 over `{iss, scope, aud, iat, exp}`.
    func assertion(now: Date, scope: String) throws -> String {
        let issued = Int(now.timeIntervalSince1970)
        let header = #"{"alg":"RS256","typ":"JWT"}"#
        let claims = try JSONSerialization.data(withJSONObject: [
            "iss": clientEmail, "scope": scope, "aud": tokenURI, "iat": issued, "exp": issued + 3600,
        ], options: [.sortedKeys])
        let input = Self.base64URL(Data(header.utf8)) + "." + Self.base64URL(claims)
        let signature = try key.signature(for: Data(input.utf8), padding: .insecurePKCS1v1_5)
        return input + "." + Self.base64URL(signature.rawRepresentation)
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
