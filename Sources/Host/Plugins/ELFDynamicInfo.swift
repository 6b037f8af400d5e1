import Foundation

/// The dynamic-linking facts of a shared object that the host checks before
/// and after `dlopen`, read from its section headers.
struct ELFDynamicInfo {
    /// Symbols exported to the dynamic loader: defined, global or weak,
    /// visible. Read from `.dynsym`, the table `dlsym` uses.
    ///
    /// A plugin exports its entry and nothing else (ABI rule 1): without a
    /// version script, every function of the plugin and of what it links
    /// statically is exported too, which the host reports.
    var exportedSymbols: [String] = []
    /// The libraries it needs (`DT_NEEDED`), in order.
    var neededLibraries: [String] = []

    /// Reads `path`; empty when the file has no such tables or cannot be read.
    init(fileAt path: String) {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else { return }
        let bytes = [UInt8](data)
        let read = ELFCheck.readInt
        let sectionHeaders = Int(read(bytes, 40, 8))
        let sectionHeaderSize = Int(read(bytes, 58, 2))
        let sectionCount = Int(read(bytes, 60, 2))
        guard sectionHeaderSize >= 64, sectionHeaders + sectionHeaderSize * sectionCount <= bytes.count else { return }
        typealias Section = (type: UInt64, offset: Int, size: Int, link: Int, entrySize: Int)
        func section(_ index: Int) -> Section? {
            let base = sectionHeaders + index * sectionHeaderSize
            let found = (read(bytes, base + 4, 4), Int(read(bytes, base + 24, 8)), Int(read(bytes, base + 32, 8)),
                         Int(read(bytes, base + 40, 4)), Int(read(bytes, base + 56, 8)))
            return found.1 + found.2 <= bytes.count ? found : nil
        }
        func string(in table: Section, at offset: Int) -> String? {
            let start = table.offset + offset
            guard offset >= 0, start < table.offset + table.size,
                  let end = bytes[start..<(table.offset + table.size)].firstIndex(of: 0) else { return nil }
            return String(decoding: bytes[start..<end], as: UTF8.self)
        }
        let sections = (0..<sectionCount).compactMap(section)
        let (dynamicSymbols, dynamicTable): (UInt64, UInt64) = (11, 6)
        if let symbols = sections.first(where: { $0.type == dynamicSymbols }), symbols.entrySize >= 24,
           symbols.link < sectionCount, let strings = section(symbols.link) {
            for entry in stride(from: symbols.offset, to: symbols.offset + symbols.size - 23, by: symbols.entrySize) {
                let binding = bytes[entry + 4] >> 4              // 1 global, 2 weak, 10 unique
                let visibility = bytes[entry + 5] & 3            // 0 default, 3 protected
                let defined = read(bytes, entry + 6, 2) != 0     // section 0: undefined here
                guard [1, 2, 10].contains(binding), visibility == 0 || visibility == 3, defined,
                      let name = string(in: strings, at: Int(read(bytes, entry, 4))) else { continue }
                exportedSymbols.append(name)
            }
        }
        if let dynamic = sections.first(where: { $0.type == dynamicTable }), dynamic.link < sectionCount,
           let strings = section(dynamic.link) {
            let needed: UInt64 = 1
            for entry in stride(from: dynamic.offset, to: dynamic.offset + dynamic.size - 15, by: 16)
            where read(bytes, entry, 8) == needed {
                if let name = string(in: strings, at: Int(read(bytes, entry + 8, 8))) { neededLibraries.append(name) }
            }
        }
    }

    /// A sanitizer runtime the library needs that must be loaded before
    /// anything else: `dlopen` of such a library ends the process.
    var sanitizerRuntime: String? {
        neededLibraries.first { name in
            ["libasan.so", "libtsan.so", "libhwasan.so", "libmsan.so"].contains { name.hasPrefix($0) }
        }
    }
}
