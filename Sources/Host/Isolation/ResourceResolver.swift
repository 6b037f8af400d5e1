/// The one place that decides whether a context may touch a resource, and
/// the one place resources are made (always in the context's tenant and env).
///
/// Every REST route and every transport call resolves through here:
/// threads and canvases (this file), gestures (`+gestures`), the stream
/// names transports subscribe to (`+streams`), and the storage key space of
/// artifacts and media (`ObjectKey.swift`: `Artifacts` takes only keys made
/// here). The scope check comes first and does not depend on the resource,
/// so a 403 says nothing about existence; "no such id" and "another
/// tenant's (or another env's) id" then give the same 404, from the same
/// single lookup.
public struct ResourceResolver: Sendable {
    let store: any EventStore
    /// Threads already read (their records never change).
    let threadRecords: ThreadRecords

    public init(store: any EventStore) {
        self.store = store
        threadRecords = ThreadRecords()
    }

    /// The resource `id` of `kind`, if `context` may access it that way.
    /// - Throws: `KernelError` 403 (`forbidden`) without the scope, 400
    ///   (`invalid_id`) for an id of the wrong shape, 404 (`not_found`) for a
    ///   missing resource and another tenant's alike.
    public func resolve(_ kind: ResourceKind, id: String, for context: RequestContext,
                        access: RequestContext.Access) async throws -> Resource {
        try await Traced.span("isolation.check", ["northstar.resource_kind": kind.rawValue]) { _ in
            try await resolveUntraced(kind, id: id, for: context, access: access)
        }
    }

    private func resolveUntraced(_ kind: ResourceKind, id: String, for context: RequestContext,
                                 access: RequestContext.Access) async throws -> Resource {
        guard context.allows(access, on: kind.area) else {
            throw KernelError.forbidden("this credential lacks the \(kind.area.rawValue):\(access.rawValue) scope")
        }
        guard Identifier.isWellFormed(id, prefix: kind.prefix) else {
            throw KernelError.invalid("invalid_id", "\"\(id.prefix(80))\" is not a \(kind.rawValue) id (\(kind.prefix) and 26 base32 characters)")
        }
        guard let resource = try await record(id), resource.kind == kind,
              resource.tenant == context.tenant.rawValue, resource.env == context.env else {
            throw KernelError.notFound(kind.rawValue)
        }
        return resource
    }

    /// The record of `id`: a thread already read, or what the store has.
    private func record(_ id: String) async throws -> Resource? {
        if let known = threadRecords.record(id) { return known }
        let resource = try await store.resource(id: id)
        if let resource { threadRecords.keep(resource) }
        return resource
    }

    /// Creates a resource of `kind` owned by the context's tenant and env,
    /// if the context holds the kind's write scope.
    public func create(_ kind: ResourceKind, _ request: CreateResourceRequest, for context: RequestContext) async throws -> Resource {
        guard context.allows(.write, on: kind.area) else {
            throw KernelError.forbidden("this credential lacks the \(kind.area.rawValue):write scope")
        }
        let resource = Resource(id: Identifier.make(prefix: kind.prefix), kind: kind, tenant: context.tenant.rawValue,
                                env: context.env, createdBy: context.userID, createdAt: .nowToTheMillisecond,
                                title: request.title, metadata: request.metadata, headRev: 0)
        try await store.create(resource)
        return resource
    }
}
