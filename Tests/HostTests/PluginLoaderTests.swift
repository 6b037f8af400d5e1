import Foundation
import NorthstarHost
import PluginAPI
import Testing

/// Each load rule, broken on purpose by a fixture plugin, gives its own refusal.
@Suite struct PluginLoaderTests {
    /// Loads `path` and returns the refusal, failing the test if it loads.
    private func refusal(_ path: String) -> PluginLoadError? {
        do {
            _ = try PluginLoader.load(path)
            Issue.record("\(path) loaded but should have been refused")
            return nil
        } catch let error as PluginLoadError {
            #expect(error.file == path)
            #expect(!error.remedy.isEmpty)
            return error
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    @Test("a well-formed plugin loads and reports what it is")
    func goodPluginLoads() throws {
        let library = try PluginLoader.load(try FixturePlugins.build(nil, name: "good-one"))
        #expect(library.name == "good-one")
        #expect(library.kind == .auth)
        #expect(library.version == "0.0.1")
        #expect(library.abiVersion == "1.\(NS_ABI_MINOR)")
    }

    @Test("a plugin built for an older minor (1.0) still loads")
    func olderMinorLoads() throws {
        let library = try PluginLoader.load(try FixturePlugins.build("CASE_MINOR_ZERO", name: "old-minor"))
        #expect(library.abiVersion == "1.0")
    }

    @Test("a missing file is refused as file-missing")
    func missingFile() {
        #expect(refusal("/nonexistent/libNope.so")?.rule == .fileMissing)
    }

    @Test("a text file, a directory, an object file and an executable are refused")
    func notSharedObjects() throws {
        let directory = try TestPaths.temporaryDirectory()
        let text = directory.appendingPathComponent("notes.so")
        try "hello".write(to: text, atomically: true, encoding: .utf8)
        #expect(refusal(text.path)?.rule == .notSharedObject)
        #expect(refusal(directory.path)?.rule == .notSharedObject)
        // An object file is ELF but not ET_DYN; a PIE executable is ET_DYN and dlopen refuses it.
        let object = directory.appendingPathComponent("plugin.o").path
        let source = directory.appendingPathComponent("plugin.c").path
        try "int x;".write(toFile: source, atomically: true, encoding: .utf8)
        #expect(try run("/usr/bin/cc", ["-c", "-o", object, source]).status == 0)
        #expect(refusal(object)?.rule == .notSharedObject)
        #expect(refusal("/bin/sh")?.rule == .dlopenFailed)
    }

    @Test("a truncated shared object is refused by the dynamic loader, without a crash")
    func truncated() throws {
        let good = try Data(contentsOf: URL(fileURLWithPath: try FixturePlugins.build(nil, name: "whole")))
        let cut = try TestPaths.temporaryDirectory().appendingPathComponent("cut.so")
        try good.prefix(700).write(to: cut)
        let error = refusal(cut.path)
        #expect(error?.rule == .notSharedObject)
        #expect(error?.message.contains("truncated") == true)
    }

    @Test("a library without the entry symbol is refused")
    func noEntry() throws {
        let error = refusal(try FixturePlugins.build("CASE_NO_ENTRY"))
        #expect(error?.rule == .noEntrySymbol)
        #expect(error?.message.contains("northstar_plugin_v1") == true)
    }

    @Test("an ABI major mismatch names both versions, by symbol and by info")
    func majorMismatch() throws {
        for variant in ["CASE_MAJOR_V2", "CASE_INFO_MAJOR_2"] {
            let error = refusal(try FixturePlugins.build(variant))
            #expect(error?.rule == .abiMajor)
            #expect(error?.message.contains("major 2") == true)
            #expect(error?.message.contains("major 1") == true)
        }
    }

    @Test("a plugin built for a newer minor than the host supports is refused")
    func minorTooNew() throws {
        let error = refusal(try FixturePlugins.build("CASE_MINOR_TOO_NEW"))
        #expect(error?.rule == .abiMinor)
        #expect(error?.message.contains("1.99") == true)
    }

    @Test("structs smaller than the 1.0 minimum are refused")
    func structsTooSmall() throws {
        #expect(refusal(try FixturePlugins.build("CASE_INFO_TOO_SMALL"))?.rule == .structTooSmall)
        #expect(refusal(try FixturePlugins.build("CASE_VTABLE_TOO_SMALL"))?.rule == .structTooSmall)
    }

    @Test("NULL mandatory entries are named")
    func nullMandatory() throws {
        let initError = refusal(try FixturePlugins.build("CASE_NULL_INIT"))
        #expect(initError?.rule == .mandatoryEntryMissing)
        #expect(initError?.message.contains("init") == true)
        let verifyError = refusal(try FixturePlugins.build("CASE_NULL_VERIFY"))
        #expect(verifyError?.rule == .mandatoryEntryMissing)
        #expect(verifyError?.message.contains("verify") == true)
    }

    @Test("an unknown kind is refused")
    func unknownKind() throws {
        let error = refusal(try FixturePlugins.build("CASE_UNKNOWN_KIND"))
        #expect(error?.rule == .unknownKind)
        #expect(error?.message.contains("7") == true)
    }

    @Test("an entry that refuses the offer passes its own message on")
    func entryRefuses() throws {
        let error = refusal(try FixturePlugins.build("CASE_ENTRY_REFUSES"))
        #expect(error?.rule == .entryRefused)
        #expect(error?.message.contains("needs ABI 1.7 for widgets") == true)
    }
}
