import Foundation
@testable import NorthstarHost
import Testing

/// The JSON writer keeps Foundation's bytes (stored events and command
/// fingerprints do not change) and has no failure path and no depth limit.
@Suite struct JSONWriterTests {
    private func foundation(_ value: JSONValue) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }

    @Test("the writer's bytes are JSONEncoder's, for every kind of value")
    func sameBytesAsFoundation() throws {
        let numbers: [Double] = [0, -0.0, 1, -1, 0.1, 2.5, 1e-7, 123.456, 1e15, 1e16, 9_007_199_254_740_992,
                                 9_007_199_254_740_994, 1.2345678901234568e17, 1e20, -1e300, 1.7976931348623157e308, 5e-324]
        let strings = ["", "plain", "quote\" back\\slash /slash", "\n\r\t\u{8}\u{C}", "\u{1}\u{1F}\u{7F}", "é ü 中文 😀", "\u{2028}"]
        var values: [JSONValue] = [.null, .bool(true), .bool(false)]
        values += numbers.map(JSONValue.number) + strings.map(JSONValue.string)
        values.append(.object(Dictionary(uniqueKeysWithValues: strings.enumerated().map { ($1, .number(Double($0))) })))
        values.append(.object(["B": .number(1), "a": .array([]), "a10": .object([:]), "a9": .null, "_": .string("x"), "é": .bool(true)]))
        values.append(.array(values))
        for value in values {
            #expect(value.encoded() == (try foundation(value)), "\(value)")
        }
    }

    @Test("a value's size is its text's length, and a value that stands for more than the limit is measured only up to it")
    func encodedSizeStopsAtTheLimit() throws {
        let value = try JSONValue.parse(#"{"b":[1,2.5,"x\"y"],"a":{"c":null,"d":true}}"#)
        let length = value.encoded().count
        #expect(value.encodedSize(atMost: length) == length)
        #expect(value.encodedSize(atMost: .max) == length)
        #expect(value.encodedSize(atMost: length - 1) == nil)
        #expect(JSONValue.string("").encodedSize(atMost: 1) == nil)
        // 2^200 leaves, shared: the measure stops just past the limit.
        var shared = JSONValue.number(1)
        for _ in 0..<200 { shared = .array([shared, shared]) }
        #expect(shared.encodedSize(atMost: 1 << 16) == nil)
    }

    @Test("a document deeper than any parser limit is still written, never replaced by null")
    func deepDocumentsAreWritten() throws {
        var value = JSONValue.number(1)
        for _ in 0..<2000 { value = .array([value]) }
        let text = value.jsonText
        #expect(text.hasPrefix(String(repeating: "[", count: 2000) + "1"))
        #expect(value.depth == 2000)
    }
}
