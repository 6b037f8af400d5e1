import Foundation

/// Checks that a file is a complete ELF64 shared object before `dlopen` sees it.
///
/// The dynamic loader maps segments where the program headers say, and a
/// truncated file turns into SIGBUS or SIGSEGV inside `ld.so`: the host must
/// refuse such a file with an error, not die of it.
enum ELFCheck {
    /// Why the file is not a loadable shared object, or nil when it is.
    static func problem(with data: Data, fileSize: UInt64) -> String? {
        let bytes = [UInt8](data)
        guard bytes.count >= 64, bytes[0...3] == [0x7F, 0x45, 0x4C, 0x46] else {
            return "it is not an ELF shared object"
        }
        guard bytes[4] == 2, bytes[5] == 1 else { return "it is not a 64-bit little-endian ELF file" }
        guard readInt(bytes, 16, 2) == 3 else {
            return "it is an ELF file but not a shared object (an executable or object file?)"
        }
        let programHeaders = readInt(bytes, 32, 8)
        let programHeaderSize = readInt(bytes, 54, 2)
        let programHeaderCount = readInt(bytes, 56, 2)
        let sectionHeaders = readInt(bytes, 40, 8)
        let sectionHeaderSize = readInt(bytes, 58, 2)
        let sectionHeaderCount = readInt(bytes, 60, 2)
        guard programHeaderSize >= 56, programHeaders + programHeaderSize * programHeaderCount <= UInt64(bytes.count),
              sectionHeaders + sectionHeaderSize * sectionHeaderCount <= fileSize else {
            return "it is truncated: its headers point past the end of the file"
        }
        for index in 0..<programHeaderCount {
            let base = Int(programHeaders + index * programHeaderSize)
            let offset = readInt(bytes, base + 8, 8)
            let size = readInt(bytes, base + 32, 8)
            guard offset.addingReportingOverflow(size).partialValue <= fileSize, offset <= fileSize else {
                return "it is truncated: a segment ends past the end of the file"
            }
        }
        return nil
    }

    static func readInt(_ bytes: [UInt8], _ offset: Int, _ count: Int) -> UInt64 {
        guard offset + count <= bytes.count else { return UInt64.max / 2 }
        return (0..<count).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
    }
}
