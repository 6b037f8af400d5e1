import ArgumentParser
import Foundation
import NorthstarHost

/// `northstar token`: mint a development token the configured auth accepts.
struct Token: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a development token that the configured auth chain accepts.",
        discussion: """
        Asks the first auth plugin that can mint (the jwt plugin in the dev default) to sign a \
        token for --tenant and --user. Use it as `Authorization: Bearer <token>`. Only auth \
        plugins are initialised; plugins named in the config outside auth.chain are not loaded at all.
        """
    )

    @OptionGroup var options: NodeOptions

    @Option(help: "Tenant id, matching ^t_[a-z0-9][a-z0-9_-]{0,62}$.")
    var tenant: String

    @Option(help: "User id.")
    var user: String

    @Option(help: "Comma-separated scopes.")
    var scopes: String = "read,write"

    @Option(help: "Env the token is for (default: the config's env).")
    var env: String?

    @Option(help: "Lifetime in seconds.")
    var ttl: Int64 = 3600

    func run() throws {
        guard TenantID(tenant) != nil else {
            throw ValidationError("--tenant \"\(tenant)\" must match ^t_[a-z0-9][a-z0-9_-]{0,62}$")
        }
        guard ttl > 0, ttl <= 366 * 86_400 else { throw ValidationError("--ttl must be between 1 and 31622400 seconds") }
        let config = try options.load()
        let plugins = try fail(on: { try PluginSet.authOnly(config: config) })
        defer { plugins.discardAll() }
        let claims = [
            "tenant_id": tenant, "user_id": user, "env": env ?? config.env,
            "scopes": scopes.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " "),
        ]
        do {
            print(try plugins.mint(claims: claims, ttlSeconds: ttl, chain: config.auth.chain))
        } catch let error as AuthPluginError {
            // A plugin that could not load may be the minter the chain needs.
            for refusal in plugins.skipped { FileHandle.standardError.write(Data("error: \(refusal)\n".utf8)) }
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }
}
