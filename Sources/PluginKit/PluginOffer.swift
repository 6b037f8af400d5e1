import PluginAPI

/// What every Swift plugin's entry point does with the host's offer.
public enum PluginOffer {
    /// Whether the host speaks this plugin's major and accepts its minor.
    public static func accepts(_ offer: UnsafePointer<ns_host_offer>?) -> Bool {
        guard let offer, offer.pointee.struct_size >= UInt32(NS_HOST_OFFER_MIN_SIZE),
              offer.pointee.abi_major == UInt32(NS_ABI_MAJOR),
              offer.pointee.abi_minor_min <= offer.pointee.abi_minor_max else { return false }
        return (offer.pointee.abi_minor_min...offer.pointee.abi_minor_max).contains(UInt32(NS_ABI_MINOR))
    }

    /// A copy of `text` that lives for the process, as `ns_plugin_info` requires.
    public static func permanent(_ text: String) -> ns_str {
        let utf8 = Array(text.utf8)
        let memory = UnsafeMutablePointer<CChar>.allocate(capacity: max(utf8.count, 1))
        for (index, byte) in utf8.enumerated() { memory[index] = CChar(bitPattern: byte) }
        return ns_str(ptr: UnsafePointer(memory), len: UInt64(utf8.count))
    }
}

extension PluginOffer {
    /// The static `ns_plugin_info` every plugin hands the host: header
    /// fields filled in, `configure` sets the lifecycle entries, and the
    /// whole lives for the process, as the ABI requires.
    public static func info(kind: Int32, name: String, version: String, summary: String, vtable: UnsafeRawPointer,
                            configure: (inout ns_plugin_info) -> Void) -> UnsafePointer<ns_plugin_info> {
        var info = ns_plugin_info()
        info.struct_size = UInt32(MemoryLayout<ns_plugin_info>.size)
        info.abi_major = UInt32(NS_ABI_MAJOR)
        info.abi_minor = UInt32(NS_ABI_MINOR)
        info.kind = ns_plugin_kind(kind)
        info.name = permanent(name)
        info.version = permanent(version)
        info.description = permanent(summary)
        info.vtable = vtable
        configure(&info)
        let pointer = UnsafeMutablePointer<ns_plugin_info>.allocate(capacity: 1)
        pointer.initialize(to: info)
        return UnsafePointer(pointer)
    }

    /// A vtable copied to storage that lives for the process.
    public static func permanent<VTable>(_ vtable: VTable) -> UnsafeRawPointer {
        let pointer = UnsafeMutablePointer<VTable>.allocate(capacity: 1)
        pointer.initialize(to: vtable)
        return UnsafeRawPointer(pointer)
    }
}

extension PluginOffer {
    /// `destroy` for an instance that is a retained Swift object: releases it.
    public static let releaseInstance: @convention(c) (UnsafeMutableRawPointer?) -> Void = { instance in
        guard let instance else { return }
        Unmanaged<AnyObject>.fromOpaque(instance).release()
    }

    /// The config section `init` receives, as bytes.
    public static func bytes(_ config: ns_str) -> [UInt8] {
        config.ptr.map { Array(UnsafeRawBufferPointer(start: $0, count: Int(config.len))) } ?? []
    }

    /// Hands a Swift error to the host as a status and message (nothing
    /// unwinds across the boundary); `fallback` is the status of an error
    /// that is not a `PluginFailure`.
    public static func report(_ error: any Error, api: UnsafePointer<ns_host_api>?, slot: OpaquePointer?,
                              fallback: Int32 = Int32(NS_ERR_INTERNAL)) -> ns_status {
        let failure = error as? PluginFailure ?? PluginFailure(status: fallback, message: "\(error)")
        withNSStr(failure.message) { api?.pointee.error_set(slot, $0) }
        return failure.status
    }
}
