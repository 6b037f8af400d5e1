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

    /// Ops that copy the document into itself, then the copy beside it:
    /// each pair doubles the document it stands for.
    private func doubling(pairs: Int) throws -> JSONPatch {
        let pair = #"{"op":"copy","from":"","path":"/x"},{"op":"copy","from":"/x","path":"/y"}"#
        let ops = try #require(try JSONValue.parse("[" + Array(repeating: pair, count: pairs).joined(separator: ",") + "]").arrayValue)
        return try JSONPatch(ops, maxDepth: 32)
    }

    @Test("copies that double the document are stopped at the copy that passes the budget, after bounded work")
    func copyBudgetStopsDoubling() throws {
        // 500 doublings stand for 2^500 values; measuring them whole would never end.
        let error = try #require(throws: JSONPatch.ApplyError.self) {
            try self.doubling(pairs: 500).apply(to: .object(["a": .string("0123456789")]), copyBudget: 4096)
        }
        #expect(error.overCopyBudget)
        // {"a":"0123456789"} is 18 bytes and the copies grow with the document:
        // 4016 bytes copied by ops[0...10], ops[11] would copy 1444 more.
        #expect(error.index == 11, "\(error.message)")
        #expect(error.message.contains("4096"))
    }

    @Test("copies within the budget apply; the budget is for all of a patch's copies together; other failures are not over it")
    func copyBudgetCountsEveryCopy() throws {
        let ten = #"{"op":"copy","from":"/a","path":"/b"}"#
        let ops = try #require(try JSONValue.parse("[" + Array(repeating: ten, count: 10).joined(separator: ",") + "]").arrayValue)
        let patch = try JSONPatch(ops, maxDepth: 32)
        let document = JSONValue.object(["a": .string(String(repeating: "x", count: 98))])   // the copied value is 100 bytes
        #expect(try patch.apply(to: document, copyBudget: 1000) == .object(["a": .string(String(repeating: "x", count: 98)),
                                                                              "b": .string(String(repeating: "x", count: 98))]))
        let error = try #require(throws: JSONPatch.ApplyError.self) { try patch.apply(to: document, copyBudget: 999) }
        #expect(error.overCopyBudget && error.index == 9)
        // With no budget (operations replayed from the log) the same patch applies.
        #expect(throws: Never.self) { try patch.apply(to: document) }
        // A copy from nowhere is the copy's own failure, not the budget's.
        let missing = try JSONPatch([try JSONValue.parse(#"{"op":"copy","from":"/none","path":"/b"}"#)], maxDepth: 32)
        let failure = try #require(throws: JSONPatch.ApplyError.self) { try missing.apply(to: document, copyBudget: 1000) }
        #expect(!failure.overCopyBudget && failure.message.contains("does not exist"))
    }

    @Test("operations change the patched copy in place and never the caller's document, whether the patch applies or fails")
    func callersDocumentIsUntouched() throws {
        let original = try JSONValue.parse(#"{"a":{"b":[1,2,3],"c":{"d":"e"}},"f":[[0]]}"#)
        let document = original
        let ops = #"[{"op":"replace","path":"/a/b/1","value":9},{"op":"add","path":"/a/c/x","value":1},{"op":"remove","path":"/f/0/0"},"#
            + #"{"op":"move","from":"/a/c/d","path":"/g"},{"op":"add","path":"/a/b/-","value":4},{"op":"copy","from":"/a/b","path":"/h"}]"#
        let patch = try JSONPatch(try #require(try JSONValue.parse(ops).arrayValue), maxDepth: 32)
        let patched = try patch.apply(to: document, copyBudget: 1000)
        #expect(patched == (try JSONValue.parse(#"{"a":{"b":[1,9,3,4],"c":{"x":1}},"f":[[]],"g":"e","h":[1,9,3,4]}"#)))
        #expect(document == original)
        // Applying twice to the same value gives the same answer (nothing leaked from the first).
        #expect(try patch.apply(to: document) == patched)
        // A patch that fails after changing its copy leaves the caller's document as it was.
        let failing = try JSONPatch(try #require(try JSONValue.parse(#"[{"op":"replace","path":"/a/b/0","value":7},{"op":"remove","path":"/a/zz"}]"#).arrayValue), maxDepth: 32)
        #expect(throws: JSONPatch.ApplyError.self) { try failing.apply(to: document) }
        #expect(document == original)
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
