import Foundation
@testable import NorthstarHost
import Testing

/// RFC 6902 operations (examples from its appendix A) and RFC 6901 pointers.
@Suite struct JSONPatchTests {
    private func apply(_ patch: String, to document: String) throws -> JSONValue {
        let ops = try #require(try JSONValue.parse(patch).arrayValue)
        return try JSONPatch(ops, maxDepth: 32).apply(to: try JSONValue.parse(document))
    }

    private func expect(_ patch: String, on document: String, gives expected: String) throws {
        let actual = try apply(patch, to: document)
        #expect(actual == (try JSONValue.parse(expected)), "\(patch) gave \(actual.jsonText)")
    }

    @Test("the appendix examples give the documented results")
    func appendixExamples() throws {
        try expect(#"[{"op":"add","path":"/baz","value":"qux"}]"#, on: #"{"foo":"bar"}"#, gives: #"{"baz":"qux","foo":"bar"}"#)
        try expect(#"[{"op":"add","path":"/foo/1","value":"qux"}]"#, on: #"{"foo":["bar","baz"]}"#, gives: #"{"foo":["bar","qux","baz"]}"#)
        try expect(#"[{"op":"remove","path":"/baz"}]"#, on: #"{"baz":"qux","foo":"bar"}"#, gives: #"{"foo":"bar"}"#)
        try expect(#"[{"op":"remove","path":"/foo/1"}]"#, on: #"{"foo":["bar","qux","baz"]}"#, gives: #"{"foo":["bar","baz"]}"#)
        try expect(#"[{"op":"replace","path":"/baz","value":"boo"}]"#, on: #"{"baz":"qux","foo":"bar"}"#, gives: #"{"baz":"boo","foo":"bar"}"#)
        try expect(#"[{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]"#,
                   on: #"{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}"#,
                   gives: #"{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}"#)
        try expect(#"[{"op":"move","from":"/foo/1","path":"/foo/3"}]"#, on: #"{"foo":["all","grass","cows","eat"]}"#,
                   gives: #"{"foo":["all","cows","eat","grass"]}"#)
        try expect(#"[{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]"#,
                   on: #"{"baz":"qux","foo":["a",2,"c"]}"#, gives: #"{"baz":"qux","foo":["a",2,"c"]}"#)
        try expect(#"[{"op":"add","path":"/child","value":{"grandchild":{}}}]"#, on: #"{"foo":"bar"}"#,
                   gives: #"{"foo":"bar","child":{"grandchild":{}}}"#)
        try expect(#"[{"op":"add","path":"/foo/-","value":["abc","def"]}]"#, on: #"{"foo":["bar"]}"#,
                   gives: #"{"foo":["bar",["abc","def"]]}"#)
        try expect(#"[{"op":"copy","from":"/a","path":"/b"}]"#, on: #"{"a":{"x":1}}"#, gives: #"{"a":{"x":1},"b":{"x":1}}"#)
        try expect(#"[{"op":"add","path":"/~1a~0b","value":1}]"#, on: "{}", gives: #"{"/a~b":1}"#)
        try expect(#"[{"op":"replace","path":"","value":[1]}]"#, on: #"{"a":1}"#, gives: "[1]")
    }

    @Test("operations that do not apply fail, naming the operation, and change nothing")
    func failures() throws {
        let cases: [(String, String)] = [
            (#"[{"op":"test","path":"/baz","value":"bar"}]"#, #"{"baz":"qux"}"#),   // A.9
            (#"[{"op":"add","path":"/baz/bat","value":"qux"}]"#, #"{"foo":"bar"}"#), // A.12
            (#"[{"op":"remove","path":"/nope"}]"#, "{}"),
            (#"[{"op":"replace","path":"/nope","value":1}]"#, "{}"),
            (#"[{"op":"add","path":"/a/5","value":1}]"#, #"{"a":[1]}"#),
            (#"[{"op":"add","path":"/a/01","value":1}]"#, #"{"a":[1,2]}"#),
            (#"[{"op":"add","path":"/x","value":1},{"op":"test","path":"/x","value":2}]"#, "{}"),
        ]
        for (patch, document) in cases {
            let ops = try #require(try JSONValue.parse(patch).arrayValue)
            let parsed = try JSONPatch(ops, maxDepth: 32)
            #expect(throws: JSONPatch.ApplyError.self, "\(patch) should fail on \(document)") {
                try parsed.apply(to: try JSONValue.parse(document))
            }
        }
    }

    @Test("malformed patches are refused when parsed")
    func malformed() throws {
        let cases = [
            #"[{"op":"frobnicate","path":"/a"}]"#,      // unknown op
            #"[{"op":"add","value":1}]"#,                // missing path
            #"[{"op":"add","path":"a","value":1}]"#,     // not a pointer
            #"[{"op":"add","path":"/a~2","value":1}]"#,  // bad escape
            #"[{"op":"add","path":"/a~","value":1}]"#,   // dangling escape
            #"[{"op":"add","path":"/a"}]"#,              // missing value
            #"[{"op":"move","path":"/a"}]"#,             // missing from
            #"[{"op":"move","from":"/a","path":"/a/b"}]"#, // into its own child
            #"[{"path":"/a"}]"#,                          // missing op
            #"[1]"#,                                      // not an object
        ]
        for patch in cases {
            let ops = try #require(try JSONValue.parse(patch).arrayValue)
            #expect(throws: JSONPatch.ParseError.self, "\(patch) should be refused") { try JSONPatch(ops, maxDepth: 32) }
        }
        let deep = #"[{"op":"add","path":"/a/b/c/d","value":1}]"#
        #expect(throws: JSONPatch.ParseError.self) { try JSONPatch(try JSONValue.parse(deep).arrayValue!, maxDepth: 3) }
    }

    @Test("pointers round-trip their escapes")
    func pointers() {
        #expect(JSONPointer("/a~1b/c~0d")?.tokens == ["a/b", "c~d"])
        #expect(JSONPointer("/a~1b/c~0d")?.description == "/a~1b/c~0d")
        #expect(JSONPointer("")?.tokens == [])
        #expect(JSONPointer("/")?.tokens == [""])
        #expect(JSONPointer("x") == nil)
    }
}
