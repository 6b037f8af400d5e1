/// The host's side of an `ns_principal *`: a verified `RequestContext`.
/// OWNERSHIP: retained for the plugin until `principal_release`.
final class Principal: Sendable {
    let context: RequestContext

    init(_ context: RequestContext) {
        self.context = context
    }

    func retainForPlugin() -> OpaquePointer { OpaquePointer(Unmanaged.passRetained(self).toOpaque()) }

    static func from(_ pointer: OpaquePointer?) -> Principal? {
        guard let pointer else { return nil }
        return Unmanaged<Principal>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }
}
