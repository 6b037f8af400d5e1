import Foundation
import Testing

@testable import NorthstarHost

/// `JSONParser` against Foundation's `JSONDecoder`, which `JSONValue.parse`
/// used before: the same documents admitted, the same values read, the
/// same documents refused.
@Suite("JSON parser")
struct JSONParserTests {
    /// What `JSONDecoder` reads from `bytes` (nil: it refuses them).
    private func decoded(_ bytes: [UInt8]) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    private func parsed(_ bytes: [UInt8]) -> JSONValue? {
        try? JSONValue.parse(Data(bytes))
    }

    static let documents: [String] = [
        // Admitted
        #"{}"#, #"[]"#, #"{"text":"hi"}"#, #" { "a" : [ 1 , 2.5 , -3e2 , true , false , null ] } "#,
        "\t\r\n[1]\n", #""just a string""#, "42", "-0", "0.5", "1E+2", "1e-2", "-1.25e10", "true", "null",
        #"{"a":{"b":{"c":[[],{}]}}}"#, #"{"a":1,"a":2}"#, #"["\u00e9\u4e2d\ud83d\ude00"]"#,
        #"["\"\\\/\b\f\n\r\t"]"#, #"["é中😀"]"#, #"["\u0000"]"#, #"{"":""}"#, "9007199254740993",
        "123456789012345678901234567890", "1.7976931348623157e308", "5e-324", "4e-324", "2e-324", "0e-400",
        "-0.000e5", "-0.0e-999", "0.0e1", "[1,]", #"{"a":1,}"#, "[1 , ]", #"{"a":[],"b":{},}"#,
        // Refused
        "", " ", "{", "}", "[", "[,]", "[,1]", "[1,,2]", "[1,,]", "{,}", #"{"a":1,,}"#, #"{"a"}"#, #"{"a":}"#, #"{a:1}"#, "{'a':1}",
        "01", "-", "+1", ".5", "1.", "1e", "1e+", "0x10", "NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "-1e-400",
        "tru", "truex", "nul", "[1] [2]", "[1]x", #""unclosed"#, "\"tab\there\"", "\"line\nbreak\"",
        #""\x""#, #""\u12""#, #""\u12G4""#, #""\ud83d""#, #""\ud83dx""#, #""\ude00""#, #""\ud83d\u0041""#,
        "[1 2]", #"{"a":1 "b":2}"#, "//comment\n1", "/*c*/1", "[1]//c",
    ]

    @Test("admits and refuses what JSONDecoder did, with the same values")
    func sameAsDecoder() {
        for document in Self.documents {
            let bytes = Array(document.utf8)
            let old = decoded(bytes), new = parsed(bytes)
            #expect((old == nil) == (new == nil), "\(document.debugDescription): JSONDecoder \(old.map { "\($0)" } ?? "refused"), parser \(new.map { "\($0)" } ?? "refused")")
            if let old, let new { #expect(old == new, "\(document.debugDescription)") }
        }
    }

    @Test("valid zeros that JSONDecoder refused are admitted")
    func zerosWithExponents() throws {
        // RFC 8259 numbers; JSONDecoder refused these (but took -0.000e5 and 0.0e1).
        for document in ["0e5", "0.000e5", "[0.000e5]"] {
            #expect(decoded(Array(document.utf8)) == nil, "JSONDecoder refused \(document)")
            let value = try JSONValue.parse(document)
            #expect(value == .number(0) || value == .array([.number(0)]), "\(document)")
        }
    }

    @Test("bytes that are not UTF-8 are refused, in strings and out")
    func invalidUTF8() {
        let cases: [[UInt8]] = [
            [0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xE4, 0xB8, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22],
            [0x22, 0xC0, 0xAF, 0x22], [0x5B, 0xFF, 0x5D], [0x22, 0x5C, 0x6E, 0xFF, 0x22],
        ]
        for bytes in cases {
            #expect(parsed(bytes) == nil, "\(bytes)")
            #expect(decoded(bytes) == nil, "JSONDecoder too: \(bytes)")
        }
    }

    @Test("nesting stops where JSONDecoder's did")
    func depth() {
        for depth in [1, 100, 510, 511, 512, 513, 600] {
            let bytes = Array(String(repeating: "[", count: depth).utf8) + Array(String(repeating: "]", count: depth).utf8)
            #expect((decoded(bytes) == nil) == (parsed(bytes) == nil), "depth \(depth)")
        }
        // Far past the limit, the error is the depth's, not a crashed stack.
        let deep = Array(String(repeating: "[", count: 100_000).utf8)
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(Data(deep)) }
    }

    @Test("what the writer writes reads back as the same value")
    func roundTrip() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let value = Self.randomValue(depth: 0, using: &generator)
            let text = value.encoded()
            #expect(try JSONValue.parse(text) == value, "\(String(decoding: text, as: UTF8.self))")
            #expect(decoded(Array(text)) == value)
        }
    }

    @Test("errors say what was found and where")
    func messages() {
        func message(_ text: String) -> String {
            do {
                _ = try JSONValue.parse(text)
                return "admitted"
            } catch {
                return "\(error)"
            }
        }
        #expect(message(#"{"a":1 "b":2}"#) == #"unexpected '"' where ',' or '}' should be (at byte 7)"#)
        #expect(message(#"{,}"#) == "unexpected ',' where a member's name should be (at byte 1)")
        #expect(message("[1 2]") == "unexpected '2' where ',' or ']' should be (at byte 3)")
        #expect(message("") == "the document is empty (at byte 0)")
        #expect(message("1e400").contains("does not fit"))
        #expect(message("\"a\nb\"").contains("control character (0x0a)"))
        #expect(message(#""\ud83d""#).contains("low surrogate"))
    }

    private static func randomValue(depth: Int, using generator: inout SystemRandomNumberGenerator) -> JSONValue {
        switch Int.random(in: 0..<(depth < 4 ? 7 : 5), using: &generator) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &generator))
        case 2:
            return Bool.random(using: &generator)
                ? .number(Double(Int.random(in: -1_000_000...1_000_000, using: &generator)))
                : .number(Double.random(in: -1e12...1e12, using: &generator))
        case 3, 4: return .string(randomString(using: &generator))
        case 5:
            return .array((0..<Int.random(in: 0...4, using: &generator)).map { _ in randomValue(depth: depth + 1, using: &generator) })
        default:
            var members: [String: JSONValue] = [:]
            for _ in 0..<Int.random(in: 0...4, using: &generator) {
                members[randomString(using: &generator)] = randomValue(depth: depth + 1, using: &generator)
            }
            return .object(members)
        }
    }

    private static func randomString(using generator: inout SystemRandomNumberGenerator) -> String {
        let pieces = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{1}", "\u{1f}", "é", "中", "😀", "\u{7f}", "\u{2028}"]
        return (0..<Int.random(in: 0...8, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
    }
}
