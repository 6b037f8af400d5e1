import Foundation
import PluginAPI
import PluginAPILayout
import Testing

/// The C ABI is a public contract: its layout may only change by appending
/// fields, and only together with a new minor.
@Suite struct ABILayoutTests {
    /// One struct as the compiler lays it out: its size and its fields in order.
    struct Layout: Codable, Equatable {
        var size: Int
        var fields: [Field]
        struct Field: Codable, Equatable {
            var name: String
            var offset: Int
            var size: Int
        }
    }

    static let manifestURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("abi-layout.json")
    static let currentVersion = "\(NS_ABI_MAJOR).\(NS_ABI_MINOR)"

    /// The layout the compiler sees now, from the C probe.
    static func probe() -> [String: Layout] {
        var layouts: [String: Layout] = [:]
        for index in 0..<ns_layout_count() {
            let entry = ns_layout_at(index)
            let type = String(cString: entry.type)
            let field = String(cString: entry.field)
            if field.isEmpty {
                layouts[type] = Layout(size: entry.size, fields: [])
            } else {
                layouts[type]?.fields.append(.init(name: field, offset: entry.offset, size: entry.size))
            }
        }
        return layouts
    }

    /// The checked-in layouts, by ABI version ("1.0", "1.1", ...).
    static func manifest() throws -> [String: [String: Layout]] {
        try JSONDecoder().decode([String: [String: Layout]].self, from: Data(contentsOf: manifestURL))
    }

    @Test("the header's layout is exactly the one checked in for its version")
    func layoutMatchesManifestForThisVersion() throws {
        let current = Self.probe()
        guard let recorded = try Self.manifest()[Self.currentVersion] else {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            Issue.record("""
                abi-layout.json has no entry for ABI \(Self.currentVersion). After an append-only change and a \
                minor bump, add this entry under "\(Self.currentVersion)":
                \(String(decoding: try encoder.encode(current), as: UTF8.self))
                """)
            return
        }
        for type in Set(current.keys).union(recorded.keys).sorted() {
            #expect(current[type] == recorded[type], """
                \(type) changed while the ABI version stayed \(Self.currentVersion). Append fields only, \
                bump NS_ABI_MINOR (and the kind's vtable minor), and record the new layout under the new version.
                """)
        }
    }

    @Test("every recorded older version is a prefix of today's layout (append-only)")
    func olderVersionsArePrefixes() throws {
        let current = Self.probe()
        for (version, layouts) in try Self.manifest() where version.hasPrefix("\(NS_ABI_MAJOR).") {
            for (type, old) in layouts {
                guard let now = current[type] else {
                    Issue.record("\(type) of ABI \(version) is gone: structs are never removed within a major")
                    continue
                }
                #expect(now.size >= old.size, "\(type) shrank since ABI \(version)")
                #expect(Array(now.fields.prefix(old.fields.count)) == old.fields,
                        "\(type)'s fields of ABI \(version) moved or changed: only appending is allowed")
            }
        }
    }

    @Test("every versioned struct starts with uint32_t struct_size")
    func structSizeFirst() {
        let frozen: Set = ["ns_str", "ns_bytes", "ns_header", "ns_claim"]
        for (type, layout) in Self.probe() where !frozen.contains(type) {
            #expect(layout.fields.first?.name == "struct_size", "\(type) must start with struct_size")
            #expect(layout.fields.first?.offset == 0)
            #expect(layout.fields.first?.size == 4)
        }
    }

    @Test("the minimum sizes the host enforces cover exactly the 1.0 fields")
    func minimumSizes() throws {
        let layouts = try #require(try Self.manifest()["1.0"])
        func end(_ type: String) -> Int {
            let last = layouts[type]!.fields.last!
            return last.offset + last.size
        }
        #expect(Int(NS_PLUGIN_INFO_MIN_SIZE) == end("ns_plugin_info"))
        #expect(Int(NS_AUTH_VTABLE_MIN_SIZE) == end("ns_auth_vtable"))
        #expect(Int(NS_STORAGE_VTABLE_MIN_SIZE) == end("ns_storage_vtable"))
        #expect(Int(NS_TRANSPORT_VTABLE_MIN_SIZE) == end("ns_transport_vtable"))
        #expect(Int(NS_HOST_API_MIN_SIZE) == end("ns_host_api"))
    }

    static let headersURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("headers")
    static let probeURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("PluginAPILayout")

    /// The layout `header` (a saved copy) gives: the probe built against it with `cc`.
    static func probe(savedHeader version: String) throws -> [String: Layout] {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("layout-\(version)-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let main = folder.appendingPathComponent("main.c")
        try """
            #include <stdio.h>
            #include "layout_probe.h"
            int main(void) {
                for (size_t i = 0; i < ns_layout_count(); i++) {
                    ns_layout_entry e = ns_layout_at(i);
                    printf("%s %s %zu %zu\\n", e.type, *e.field ? e.field : "-", e.offset, e.size);
                }
                return 0;
            }
            """.write(to: main, atomically: true, encoding: .utf8)
        let binary = folder.appendingPathComponent("probe").path
        try run("/usr/bin/env", ["cc", "-std=c99", "-I", headersURL.appendingPathComponent(version).path,
                                 "-I", probeURL.appendingPathComponent("include").path,
                                 "-o", binary, main.path, probeURL.appendingPathComponent("layout_probe.c").path])
        var layouts: [String: Layout] = [:]
        for line in try run(binary, []).split(separator: "\n") {
            let parts = line.split(separator: " ")
            let (type, field, offset, size) = (String(parts[0]), String(parts[1]), Int(parts[2])!, Int(parts[3])!)
            if field == "-" {
                layouts[type] = Layout(size: size, fields: [])
            } else {
                layouts[type]?.fields.append(.init(name: field, offset: offset, size: size))
            }
        }
        return layouts
    }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "\(executable) \(arguments) failed"])
        }
        return String(decoding: data, as: UTF8.self)
    }

    @Test("every earlier minor has its header saved, and it lays out exactly as recorded")
    func savedHeadersMatchTheirVersions() throws {
        let manifest = try Self.manifest()
        for version in manifest.keys.sorted() where version != Self.currentVersion {
            let header = Self.headersURL.appendingPathComponent(version).appendingPathComponent("northstar_plugin.h")
            let text = try String(contentsOf: header, encoding: .utf8)
            let minor = version.split(separator: ".")[1]
            #expect(text.contains("#define NS_ABI_MINOR \(minor)\n"), "headers/\(version) is not the \(version) header")
            let layouts = try Self.probe(savedHeader: version)
            for type in Set(layouts.keys).union(manifest[version]!.keys).sorted() {
                #expect(layouts[type] == manifest[version]![type], "\(type) in headers/\(version) differs from abi-layout.json's \(version)")
            }
        }
    }
}
