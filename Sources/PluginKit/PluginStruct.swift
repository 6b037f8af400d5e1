import Foundation

/// Reads a struct the other side of the ABI hands over, at that side's own size.
///
/// Structs only grow by appending (ABI rule 3), so a plugin built against an
/// older header passes a shorter struct than the reader knows: the reader
/// copies the bytes its `struct_size` covers and treats later fields as absent
/// (zero, NULL), never reading past the plugin's memory.
public enum PluginStruct {
    /// A copy of `*pointer`, up to its leading `uint32_t struct_size`, the
    /// rest zeroed; nil when `struct_size` is below `minimumSize` (its 1.0 size).
    public static func copy<T>(_ pointer: UnsafePointer<T>, minimumSize: Int) -> T? {
        let declared = Int(UnsafeRawPointer(pointer).load(as: UInt32.self))
        guard declared >= minimumSize else { return nil }
        let copy = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<T>.size, alignment: MemoryLayout<T>.alignment)
        defer { copy.deallocate() }
        copy.initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<T>.size)
        copy.copyMemory(from: pointer, byteCount: min(declared, MemoryLayout<T>.size))
        return copy.load(as: T.self)
    }

    /// Whether `value`'s `struct_size` covers the field at `field` whole.
    public static func covers<T, Field>(_ value: T, through field: KeyPath<T, Field>) -> Bool {
        guard let offset = MemoryLayout<T>.offset(of: field) else { return false }
        let declared = withUnsafeBytes(of: value) { Int($0.load(as: UInt32.self)) }
        return declared >= offset + MemoryLayout<Field>.size
    }
}
