import Foundation
@testable import NorthstarHost
import Testing

/// Ids and trace ids: the right shape, every character reachable, no repeats.
@Suite struct IdentifierTests {
    @Test("ids are well formed, distinct, and use the whole base32 alphabet in every position")
    func ids() {
        var seen = Set<String>()
        var perPosition = Array(repeating: Set<Character>(), count: 26)
        for _ in 0..<20_000 {
            let id = Identifier.make(prefix: "th_")
            #expect(Identifier.isWellFormed(id, prefix: "th_"))
            seen.insert(id)
            for (index, character) in id.dropFirst(3).enumerated() { perPosition[index].insert(character) }
        }
        #expect(seen.count == 20_000)
        #expect(perPosition.allSatisfy { $0.count == 32 })
    }

    @Test("an id is its random bytes in base32, 5 bits a character, in order")
    func base32() {
        // Expected values from Python's base64.b32encode(bytes).lower()[:26].
        #expect(Identifier.make(prefix: "ev_", from: Array(0...16)) == "ev_aaaqeayeaudaocajbifqydiob4")
        #expect(Identifier.make(prefix: "th_", from: Array(repeating: 0xFF, count: 17)) == "th_" + String(repeating: "7", count: 26))
        #expect(Identifier.make(prefix: "", from: Array([[0x5A, 0xC3], [0x5A, 0xC3], [0x5A, 0xC3], [0x5A, 0xC3],
                                                          [0x5A, 0xC3], [0x5A, 0xC3], [0x5A, 0xC3], [0x5A, 0xC3], [0x01]].joined()))
                == "llbvvq22ynnmgwwdllbvvq22ym")
    }

    @Test("random bytes: the asked count, every byte value, no repeats")
    func randomBytes() {
        #expect(RandomBytes.make(0).isEmpty)
        var values = Set<UInt8>()
        var draws = Set<[UInt8]>()
        for _ in 0..<2_000 {
            let bytes = RandomBytes.make(24)
            #expect(bytes.count == 24)
            values.formUnion(bytes)
            draws.insert(bytes)
        }
        #expect(values.count == 256 && draws.count == 2_000)
    }

    @Test("trace and request ids are lowercase hex of the asked length")
    func hex() {
        for bytes in [8, 12, 16] {
            let text = TraceContext.hex(bytes)
            #expect(text.count == bytes * 2 && text.allSatisfy { "0123456789abcdef".contains($0) })
        }
        #expect(TraceContext.traceparent(from: nil).wholeMatch(of: /00-[0-9a-f]{32}-[0-9a-f]{16}-01/) != nil)
        #expect(Set((0..<1000).map { _ in TraceContext.hex(16) }).count == 1000)
    }

    @Test("a client's traceparent is kept only when well formed")
    func traceparentFromTheClient() {
        let valid = "00-c97792b7c721dedc1cf343b843e08d3d-a6c355d7c5d16644-01"
        #expect(TraceContext.traceparent(from: valid) == valid)
        let refused = [
            "", "00", valid.uppercased(), valid + "0", String(valid.dropLast()),
            "01-c97792b7c721dedc1cf343b843e08d3d-a6c355d7c5d16644-01",          // another version
            "00-00000000000000000000000000000000-a6c355d7c5d16644-01",          // an all-zero trace id
            "00-c97792b7c721dedc1cf343b843e08d3d-0000000000000000-01",          // an all-zero parent id
            "00-c97792b7c721dedc1cf343b843e08d3d_a6c355d7c5d16644-01",          // not a dash
            "00-c97792b7c721dedc1cf343b843e08d3g-a6c355d7c5d16644-01",          // not hex
            "00-c97792b7c721dedc1cf343b843e08d3d-a6c355d7c5d16644-0é",          // not ASCII
        ]
        for header in refused {
            let answer = TraceContext.traceparent(from: header)
            #expect(answer != header, "\(header) was kept")
            #expect(TraceContext.isWellFormed(traceparent: answer))
        }
    }
}
