import Foundation
import NorthstarHost
import Testing

/// The whole plugin set: duplicates, init and config refusals, start order.
@Suite struct PluginSetTests {
    private func refusal(_ json: String) throws -> PluginLoadError? {
        do {
            let set = try PluginSet(config: try loadConfig(json))
            set.discardAll()
            Issue.record("the set loaded but should have been refused")
            return nil
        } catch let error as PluginLoadError {
            return error
        }
    }

    @Test("the same file named twice is refused, also through a symlink")
    func duplicateFile() throws {
        let path = try FixturePlugins.build(nil, name: "twice")
        let link = try TestPaths.temporaryDirectory().appendingPathComponent("alias.so")
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: path)
        let error = try refusal(pluginConfig([(path, "{}"), (link.path, "{}")]))
        #expect(error?.rule == .duplicateFile)
    }

    @Test("two plugins with one name are refused")
    func duplicateName() throws {
        let first = try FixturePlugins.build(nil, name: "samename")
        let second = try FixturePlugins.build("CASE_DUPLICATE_COPY", name: "samename")
        #expect(try refusal(pluginConfig([(first, "{}"), (second, "{}")]))?.rule == .duplicateName)
    }

    @Test("a config name that is not the plugin's is refused")
    func nameMismatch() throws {
        let path = try FixturePlugins.build(nil, name: "realname")
        let error = try refusal(#"{"plugins": [{"name": "othername", "path": "\#(path)"}]}"#)
        #expect(error?.rule == .nameMismatch)
    }

    @Test("a plugin rejecting its config is refused with its message")
    func configRejected() throws {
        let path = try FixturePlugins.build(nil, name: "picky")
        let error = try refusal(pluginConfig([(path, #"{"bad": 1}"#)]))
        #expect(error?.rule == .configRejected)
        #expect(error?.message.contains("bad: this key is not allowed") == true)
    }

    @Test("a plugin whose init fails is refused with its message")
    func initFails() throws {
        let path = try FixturePlugins.build(nil, name: "broken")
        let error = try refusal(pluginConfig([(path, #"{"fail_init": true}"#)]))
        #expect(error?.rule == .initFailed)
        #expect(error?.message.contains("the widget store is unreachable") == true)
    }

    @Test("an auth chain naming a missing plugin is refused")
    func chainNamesMissingPlugin() throws {
        let path = try FixturePlugins.build(nil, name: "present")
        let error = try refusal(#"{"auth": {"chain": ["absent"]}, "plugins": [{"path": "\#(path)"}]}"#)
        #expect(error?.rule == .authChain)
    }

    @Test("plugins start in config order and stop in reverse order")
    func startStopOrder() throws {
        let log = try TestPaths.temporaryDirectory().appendingPathComponent("events.log").path
        let first = try FixturePlugins.build(nil, name: "first")
        let second = try FixturePlugins.build("CASE_SECOND", name: "second")
        let set = try PluginSet(config: try loadConfig(pluginConfig([
            (first, #"{"log": "\#(log)"}"#), (second, #"{"log": "\#(log)"}"#),
        ])))
        try set.start()
        set.stop()
        let events = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        #expect(events == ["start first", "start second", "stop second", "stop first"])
    }

    @Test("a failing start stops the plugins already started and names the culprit")
    func startFailure() throws {
        let log = try TestPaths.temporaryDirectory().appendingPathComponent("events.log").path
        let first = try FixturePlugins.build(nil, name: "early")
        let second = try FixturePlugins.build("CASE_LATE", name: "late")
        let set = try PluginSet(config: try loadConfig(pluginConfig([
            (first, #"{"log": "\#(log)"}"#), (second, #"{"fail_start": true}"#),
        ])))
        do {
            try set.start()
            Issue.record("start should have failed")
        } catch let error as PluginLoadError {
            #expect(error.rule == .startFailed)
            #expect(error.message.contains("cannot bind widget"))
        }
        let events = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        #expect(events.prefix(2) == ["start early", "stop early"])
    }
}
