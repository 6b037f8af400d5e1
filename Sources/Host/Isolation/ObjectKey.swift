/// A storage key the kernel built for one tenant and env: the only kind of
/// key `Artifacts` takes, so no route or plugin can hand it a raw string.
public struct StorageKey: Sendable, Equatable, CustomStringConvertible {
    public let raw: String

    fileprivate init(_ raw: String) { self.raw = raw }

    public var description: String { raw }
}

/// The key space of one tenant's env, in the one key scheme of every
/// backend, built from checked names and never from anything a plugin or a
/// client assembled:
///
///     tenants/{tenant_id}/{env}/raw/{asset_id}/{filename}
///     tenants/{tenant_id}/{env}/media/{path}
///
/// Only the isolation service makes one (`ResourceResolver.objectKeys`),
/// after checking the caller's artifacts scope.
struct ObjectKey: Sendable {
    let tenant: String
    let env: String

    fileprivate init(_ context: RequestContext) {
        tenant = context.tenant.rawValue
        env = context.env
    }

    /// The two areas of a key space.
    enum Area: Sendable { case raw, media }

    var rawPrefix: String { "tenants/\(tenant)/\(env)/raw/" }
    var mediaPrefix: String { "tenants/\(tenant)/\(env)/media/" }

    /// Where an area's keys start.
    func prefix(of area: Area) -> String { area == .raw ? rawPrefix : mediaPrefix }

    func raw(assetID: String, filename: String) -> StorageKey { StorageKey(rawPrefix + assetID + "/" + filename) }
    func media(_ path: String) -> StorageKey { StorageKey(mediaPrefix + path) }
    /// A prefix to list under: an area of this key space and a checked `prefix` within it.
    func listing(_ area: Area, _ prefix: String) -> StorageKey { StorageKey(self.prefix(of: area) + prefix) }

    /// A key a listing of this key space returned, accepted only if it is inside it.
    func listed(_ key: String) throws -> StorageKey {
        guard key.hasPrefix(rawPrefix) || key.hasPrefix(mediaPrefix) else { throw KernelError.notFound("object") }
        return StorageKey(key)
    }
}

extension ResourceResolver {
    /// The key space `context` may use for artifacts and media with `access`.
    /// - Throws: `KernelError` 403 without the artifacts scope.
    func objectKeys(for context: RequestContext, access: RequestContext.Access) throws -> ObjectKey {
        guard context.allows(access, on: .artifacts) else {
            throw KernelError.forbidden("this credential lacks the artifacts:\(access.rawValue) scope")
        }
        return ObjectKey(context)
    }
}
