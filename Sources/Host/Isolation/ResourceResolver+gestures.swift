extension ResourceResolver {
    /// The gesture, if `context` may use it that way: the canvas scope is
    /// checked first (403 says nothing about existence), then a missing
    /// gesture, another tenant's, another env's or another canvas's are the
    /// same 404.
    public func resolveGesture(_ gestureID: String, canvasID: String?, for context: RequestContext,
                               access: RequestContext.Access) async throws -> Gesture {
        try await Traced.span("isolation.check", ["northstar.resource_kind": "gesture"]) { _ in
            try await resolveGestureUntraced(gestureID, canvasID: canvasID, for: context, access: access)
        }
    }

    private func resolveGestureUntraced(_ gestureID: String, canvasID: String?, for context: RequestContext,
                                        access: RequestContext.Access) async throws -> Gesture {
        guard context.allows(access, on: .canvas) else {
            throw KernelError.forbidden("this credential lacks the canvas:\(access.rawValue) scope")
        }
        guard Identifier.isWellFormed(gestureID, prefix: Gestures.idPrefix) else {
            throw KernelError.invalid("invalid_id", "\"\(gestureID.prefix(80))\" is not a gesture id (gs_ and 26 base32 characters)")
        }
        guard let gesture = try await store.gesture(id: gestureID), gesture.tenant == context.tenant.rawValue,
              gesture.env == context.env, canvasID == nil || canvasID == gesture.canvasID else {
            throw KernelError.notFound("gesture")
        }
        return gesture
    }
}
