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
