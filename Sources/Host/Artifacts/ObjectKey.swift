/// The one key scheme of every backend, built by the kernel from the
/// request context and checked names, never from anything a plugin or a
/// client assembled:
///
///     tenants/{tenant_id}/{env}/raw/{asset_id}/{filename}
///     tenants/{tenant_id}/{env}/media/{path}
struct ObjectKey {
    let tenant: String
    let env: String

    init(_ context: RequestContext) {
        tenant = context.tenant.rawValue
        env = context.env
    }

    var rawPrefix: String { "tenants/\(tenant)/\(env)/raw/" }
    var mediaPrefix: String { "tenants/\(tenant)/\(env)/media/" }

    func raw(assetID: String, filename: String) -> String { rawPrefix + assetID + "/" + filename }
    func media(_ path: String) -> String { mediaPrefix + path }
}
