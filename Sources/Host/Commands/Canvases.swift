import Foundation

/// Canvases: a JSON document per canvas, changed only by commands.
public struct Canvases: Sendable {
    let store: any EventStore
    let resolver: ResourceResolver

    /// Creates an empty canvas (`{}` at `head_rev` 0).
    public func create(_ request: CreateResourceRequest, context: RequestContext) async throws -> Resource {
        try resolver.authorizeCreate(.canvas, for: context)
        let canvas = Resource(id: Identifier.make(prefix: ResourceKind.canvas.prefix), kind: .canvas,
                              tenant: context.tenant.rawValue, env: context.env, createdBy: context.userID,
                              createdAt: Date(), title: request.title, metadata: request.metadata, headRev: 0)
        try await store.create(canvas)
        return canvas
    }
}
