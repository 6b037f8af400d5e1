import Foundation
import NIOSSL
import PostgresNIO

/// Where the cluster's database is, from `store.postgres_url`:
/// `postgres://user[:password]@host[:port]/database[?sslmode=disable|prefer|require]`.
/// The password belongs in the environment (`"${NORTHSTAR_PG_URL}"`), never in a file.
struct PostgresAddress: Sendable, Equatable {
    enum TLSMode: String, Sendable { case disable, prefer, require }

    let host: String
    let port: Int
    let user: String
    let password: String?
    let database: String
    let tls: TLSMode

    /// - Throws: a message that says what is wrong, never the password.
    init(url text: String) throws(AddressError) {
        guard let parts = URLComponents(string: text), ["postgres", "postgresql"].contains(parts.scheme ?? "") else {
            throw AddressError("must be postgres://user[:password]@host[:port]/database")
        }
        guard let host = parts.host, !host.isEmpty else { throw AddressError("names no host") }
        guard let user = parts.user, !user.isEmpty else { throw AddressError("names no user") }
        let database = String(parts.path.dropFirst())
        guard !database.isEmpty, !database.contains("/") else { throw AddressError("names no database (…/database)") }
        var tls = TLSMode.prefer
        for item in parts.queryItems ?? [] {
            guard item.name == "sslmode" else { throw AddressError("takes only the sslmode parameter, not \"\(item.name)\"") }
            guard let mode = TLSMode(rawValue: item.value ?? "") else {
                throw AddressError("sslmode must be disable, prefer or require")
            }
            tls = mode
        }
        self.host = host
        self.port = parts.port ?? 5432
        self.user = user
        self.password = parts.password
        self.database = database
        self.tls = tls
    }

    struct AddressError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// Where to connect, as postgres-nio takes it.
    var configuration: PostgresClient.Configuration {
        let mode: PostgresClient.Configuration.TLS = switch tls {
        case .disable: .disable
        case .prefer: .prefer(.makeClientConfiguration())
        case .require: .require(.makeClientConfiguration())
        }
        return PostgresClient.Configuration(host: host, port: port, username: user, password: password, database: database, tls: mode)
    }

    /// The same, for the one connection that listens for notifications.
    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        let mode: PostgresConnection.Configuration.TLS = switch tls {
        case .disable: .disable
        case .prefer: .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
        case .require: .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
        return PostgresConnection.Configuration(host: host, port: port, username: user, password: password, database: database, tls: mode)
    }

    /// For logs: everything but the password.
    var redacted: String { "postgres://\(user)@\(host):\(port)/\(database)" }
}
