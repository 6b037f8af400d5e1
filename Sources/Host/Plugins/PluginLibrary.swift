import Foundation
import NorthstarPluginKit
import PluginAPI

/// A shared object that passed every load check: its entry answered, its
/// info and vtable are big enough, and its mandatory entries are present.
///
/// OWNERSHIP: `info` points into the library, which is never unloaded.
public struct PluginLibrary: @unchecked Sendable {
    /// The path as given, and the real path duplicates are judged by.
    public let file: String
    public let realPath: String
    public let info: UnsafePointer<ns_plugin_info>
    public let kind: PluginKind
    public let name: String
    public let version: String
    public let summary: String
    public let abiMinor: UInt32
    public let vtableMinor: UInt32
    /// What the plugin does that the ABI forbids but loading survives
    /// (symbols exported besides the entry): shown by `plugins inspect` and
    /// `config check`, logged by `serve`.
    public var warnings: [String] = []
    /// The plugin's handle (`ns_host *`), created at load so that the entry
    /// can already log under the file's name.
    let handle: PluginHandle

    /// A short line for `plugins inspect`.
    public var abiVersion: String { "\(NS_ABI_MAJOR).\(abiMinor)" }
}

/// Loads and checks plugins, without initialising them.
public enum PluginLoader {
    nonisolated(unsafe) static let namePattern = /^[a-z][a-z0-9_-]{0,31}$/

    /// Loads `path` and checks it against every ABI rule.
    /// - Parameter path: absolute, or relative to the current directory.
    /// - Throws: `PluginLoadError` naming the file, the rule and the remedy.
    public static func load(_ path: String) throws -> PluginLibrary {
        let realPath = try checkFile(path)
        let dynamic = ELFDynamicInfo(fileAt: realPath)
        // The loader ends the process, not the call, for such a library.
        if let runtime = dynamic.sanitizerRuntime, dlopen(runtime, RTLD_LAZY | RTLD_NOLOAD) == nil {
            throw PluginLoadError(file: path, rule: .sanitizerRuntime,
                                  message: "it was built with a sanitizer and needs \(runtime), whose runtime must be loaded before any other library; loading it would end the process",
                                  remedy: "build the plugin without -fsanitize, or start northstar with LD_PRELOAD=$(cc -print-file-name=\(runtime))")
        }
        // RTLD_LOCAL: the plugin's symbols never satisfy another library's.
        // RTLD_NOW: a missing symbol fails here, not at first call.
        guard let library = dlopen(realPath, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown reason"
            throw PluginLoadError(file: path, rule: .dlopenFailed, message: "the dynamic loader refused it: \(reason)",
                                  remedy: dlopenRemedy(reason, path: path))
        }
        // Never dlclose: unloading Swift code is unsafe, and the ABI promises
        // plugins their library stays mapped.
        guard let symbol = dlsym(library, NS_ENTRY_SYMBOL) else {
            throw missingEntryError(path, library: library)
        }
        let entry = unsafeBitCast(symbol, to: ns_plugin_entry_fn.self)
        let handle = PluginHandle(file: path)
        let slot = ErrorSlot()
        var infoPointer: UnsafePointer<ns_plugin_info>?
        let status = handle.withConfig(.object([:])) { entry(HostServices.offer, &infoPointer, slot.pointer) }
        guard status == NS_OK else {
            throw PluginLoadError(file: path, rule: .entryRefused,
                                  message: "its entry refused to load (status \(status)): \(slot.message ?? "no message")",
                                  remedy: "use a plugin built for ABI \(NS_ABI_MAJOR).\(HostServices.minorRange.lowerBound)–\(NS_ABI_MAJOR).\(HostServices.minorRange.upperBound)")
        }
        guard let info = infoPointer else {
            throw PluginLoadError(file: path, rule: .entryRefused, message: "its entry returned NS_OK but no ns_plugin_info",
                                  remedy: "set *out_info to a static ns_plugin_info before returning NS_OK")
        }
        var checked = try check(info, path: path, realPath: realPath, handle: handle)
        let extra = dynamic.exportedSymbols.filter { $0 != NS_ENTRY_SYMBOL }.sorted()
        if !extra.isEmpty {
            let shown = extra.prefix(5).joined(separator: ", ") + (extra.count > 5 ? ", …" : "")
            checked.warnings.append("it exports \(extra.count) symbol\(extra.count == 1 ? "" : "s") besides \(NS_ENTRY_SYMBOL) (\(shown)); "
                                    + "link it with a version script that exports only the entry (see docs/plugins.md, rule 4)")
        }
        return checked
    }

    /// Checks that `path` names a regular ELF shared object; returns its real path.
    static func checkFile(_ path: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw PluginLoadError(file: path, rule: .fileMissing, message: "no such file",
                                  remedy: "install the plugin at that path or correct the path in the config (a relative path is looked up in node.plugin_dir; the plugins that come with Northstar are built there by `swift build`)")
        }
        guard !isDirectory.boolValue else {
            throw PluginLoadError(file: path, rule: .notSharedObject, message: "it is a directory",
                                  remedy: "name the plugin's .so file, not its folder")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw PluginLoadError(file: path, rule: .fileMissing, message: "the file cannot be read",
                                  remedy: "check the file's permissions")
        }
        defer { try? handle.close() }
        // The headers and program header table sit in the first pages of any plugin.
        let head = (try? handle.read(upToCount: 64 * 1024)) ?? Data()
        let size = (try? handle.seekToEnd()) ?? 0
        if let problem = ELFCheck.problem(with: head, fileSize: size) {
            throw PluginLoadError(file: path, rule: .notSharedObject, message: problem,
                                  remedy: "name a complete plugin built as a shared library (.so)")
        }
        return URL(fileURLWithPath: path).resolvingSymlinksInPath().path
    }

    /// A vtable's size must be its kind's at the minor it declares: a storage
    /// vtable declared as a transport would otherwise be called as one.
    static func checkVTableSize(_ size: Int, minor: UInt32, kind: PluginKind, path: String) throws {
        let sizes = kind.vtableSizes
        // A minor newer than the host knows (a plugin built against a newer
        // header that needs only what this host has) holds at least today's entries.
        let fits = Int(minor) < sizes.count ? size == sizes[Int(minor)] : size >= sizes[sizes.count - 1]
        guard !fits else { return }
        let expected = Int(minor) < sizes.count ? "\(sizes[Int(minor)])" : "at least \(sizes[sizes.count - 1])"
        let lookalike = PluginKind.all.first { $0 != kind && $0.vtableSizes.contains(size) }
        throw PluginLoadError(file: path, rule: .vtableMismatch,
                              message: "it declares kind \(kind), but its vtable is \(size) bytes at minor \(minor), where ns_\(kind)_vtable is \(expected)"
                                  + (lookalike.map { " (a \($0) vtable is \(size) bytes: is ns_plugin_info.kind right?)" } ?? ""),
                              remedy: "set ns_plugin_info.kind to the vtable's kind, and the vtable's struct_size and minor to sizeof(ns_\(kind)_vtable) and NS_\(kind.description.uppercased())_VTABLE_MINOR from the header it was built with")
    }

    /// What to do about the dynamic loader's refusal, by what it said.
    static func dlopenRemedy(_ reason: String, path: String) -> String {
        if let range = reason.range(of: "undefined symbol: ") {
            let symbol = reason[range.upperBound...].prefix { !$0.isWhitespace && $0 != "," && $0 != ")" }
            return "the plugin uses \(symbol), which no library it links provides: link the library that defines it into the plugin (for example -lcrypto for OpenSSL's functions); `ldd -r \(path)` lists every symbol still missing"
        }
        if reason.contains("cannot open shared object file") {
            return "a library the plugin depends on is not installed or not on the loader's path: install it, or build the plugin with an rpath to it; `ldd \(path)` shows which one is \"not found\""
        }
        if reason.contains("cannot allocate memory in static TLS block") || reason.contains("ASan runtime") {
            return "the plugin was built with a runtime that must be loaded first (a sanitizer, static TLS): build it without, or preload that runtime"
        }
        if reason.contains("wrong ELF class") || reason.contains("invalid ELF header") || reason.contains("file too short") {
            return "build the plugin for this platform (64-bit Linux, this CPU); a truncated or foreign file cannot load"
        }
        return "run `ldd -r \(path)` to see what the loader misses, and rebuild the plugin for this platform"
    }

    /// A library without `northstar_plugin_v1`: say which major it speaks, if any.
    static func missingEntryError(_ path: String, library: UnsafeMutableRawPointer) -> PluginLoadError {
        for major in [0] + Array(2...9) where dlsym(library, "northstar_plugin_v\(major)") != nil {
            return PluginLoadError(file: path, rule: .abiMajor,
                                   message: "it was built for ABI major \(major), this host speaks ABI major \(NS_ABI_MAJOR)",
                                   remedy: "use a build of the plugin for ABI \(NS_ABI_MAJOR), or a host that speaks ABI \(major)")
        }
        return PluginLoadError(file: path, rule: .noEntrySymbol,
                               message: "it does not export \(NS_ENTRY_SYMBOL)",
                               remedy: "export `ns_status northstar_plugin_v1(const ns_host_offer *, const ns_plugin_info **, ns_error *)` (see docs/plugins.md)")
    }

    /// Checks the info and vtable the entry returned.
    static func check(_ info: UnsafePointer<ns_plugin_info>, path: String, realPath: String,
                      handle: PluginHandle) throws -> PluginLibrary {
        let size = Int(info.pointee.struct_size)
        guard size >= Int(NS_PLUGIN_INFO_MIN_SIZE) else {
            throw PluginLoadError(file: path, rule: .structTooSmall,
                                  message: "ns_plugin_info.struct_size is \(size), the minimum is \(NS_PLUGIN_INFO_MIN_SIZE)",
                                  remedy: "set struct_size = sizeof(ns_plugin_info) and rebuild against this header")
        }
        let fields = info.pointee
        guard fields.abi_major == NS_ABI_MAJOR else {
            throw PluginLoadError(file: path, rule: .abiMajor,
                                  message: "it was built for ABI major \(fields.abi_major), this host speaks ABI major \(NS_ABI_MAJOR)",
                                  remedy: "rebuild the plugin against ABI \(NS_ABI_MAJOR)")
        }
        guard HostServices.minorRange.contains(fields.abi_minor) else {
            throw PluginLoadError(file: path, rule: .abiMinor,
                                  message: "it needs ABI \(NS_ABI_MAJOR).\(fields.abi_minor), this host supports \(NS_ABI_MAJOR).\(HostServices.minorRange.lowerBound) to \(NS_ABI_MAJOR).\(HostServices.minorRange.upperBound)",
                                  remedy: "upgrade the host, or use a build of the plugin for an older minor")
        }
        guard let kind = PluginKind(rawValue: fields.kind) else {
            throw PluginLoadError(file: path, rule: .unknownKind,
                                  message: "its kind is \(fields.kind); known kinds are 1 (transport), 2 (storage), 3 (auth)",
                                  remedy: "set ns_plugin_info.kind to NS_KIND_TRANSPORT, NS_KIND_STORAGE or NS_KIND_AUTH")
        }
        let name = fields.name.string
        guard name.wholeMatch(of: namePattern) != nil else {
            throw PluginLoadError(file: path, rule: .badName,
                                  message: "its name \"\(name)\" does not match [a-z][a-z0-9_-]{0,31}",
                                  remedy: "give the plugin a short lowercase name")
        }
        var missing = fields.`init` == nil ? ["ns_plugin_info.init"] : []
        if fields.vtable == nil { missing.append("ns_plugin_info.vtable") }
        guard missing.isEmpty, let vtable = fields.vtable else {
            throw PluginLoadError(file: path, rule: .mandatoryEntryMissing,
                                  message: "mandatory entries are NULL: \(missing.joined(separator: ", "))",
                                  remedy: "implement every MANDATORY entry the header lists")
        }
        // Every vtable starts with struct_size and minor.
        let vtableSize = Int(vtable.load(as: UInt32.self))
        let vtableMinor = vtable.load(fromByteOffset: 4, as: UInt32.self)
        guard vtableSize >= kind.minimumVTableSize else {
            throw PluginLoadError(file: path, rule: .structTooSmall,
                                  message: "its \(kind) vtable's struct_size is \(vtableSize), the minimum is \(kind.minimumVTableSize)",
                                  remedy: "set struct_size = sizeof(ns_\(kind)_vtable) and rebuild against this header")
        }
        try checkVTableSize(vtableSize, minor: vtableMinor, kind: kind, path: path)
        let missingEntries = kind.missingEntries(in: vtable)
        guard missingEntries.isEmpty else {
            throw PluginLoadError(file: path, rule: .mandatoryEntryMissing,
                                  message: "mandatory \(kind) entries are NULL: \(missingEntries.joined(separator: ", "))",
                                  remedy: "implement every MANDATORY entry of ns_\(kind)_vtable")
        }
        handle.name = name
        handle.abiMinor = fields.abi_minor
        return PluginLibrary(file: path, realPath: realPath, info: info, kind: kind, name: name,
                             version: fields.version.string, summary: fields.description.string,
                             abiMinor: fields.abi_minor, vtableMinor: vtableMinor, handle: handle)
    }
}
