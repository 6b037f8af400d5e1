@testable import NorthstarHost
import Testing

/// `store.postgres_url`: what is read from it, what is refused, and that
/// the password never reaches a message.
@Suite struct PostgresAddressTests {
    @Test("every part is read, with defaults for the port and TLS")
    func parts() throws {
        let full = try PostgresAddress(url: "postgres://app:s3cret@db.internal:6432/events?sslmode=require")
        #expect(full.host == "db.internal" && full.port == 6432 && full.user == "app" && full.password == "s3cret")
        #expect(full.database == "events" && full.tls == .require)
        #expect(full.redacted == "postgres://app@db.internal:6432/events")
        let short = try PostgresAddress(url: "postgresql://app@127.0.0.1/events")
        #expect(short.port == 5432 && short.password == nil && short.tls == .prefer)
    }

    @Test("bad URLs are refused with a reason and without the password",
          arguments: ["mysql://app:pw-123@h/db", "postgres://:pw-123@h/db", "postgres://app:pw-123@/db", "postgres://app:pw-123@h",
                      "postgres://app:pw-123@h/", "postgres://app:pw-123@h/a/b", "postgres://app:pw-123@h/db?sslmode=on",
                      "postgres://app:pw-123@h/db?timeout=5", "not a url"])
    func refused(url: String) {
        #expect(throws: PostgresAddress.AddressError.self) { try PostgresAddress(url: url) }
        do {
            _ = try PostgresAddress(url: url)
        } catch {
            #expect(!error.description.contains("pw-123"))
        }
    }
}
