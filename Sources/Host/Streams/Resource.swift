import Foundation

/// What a resource is. Each kind has its own id prefix.
public enum ResourceKind: String, Sendable, CaseIterable {
    case thread, canvas

    /// The id prefix (`th_`, `cv_`).
    var prefix: String {
        switch self {
        case .thread: "th_"
        case .canvas: "cv_"
        }
    }

    /// The stream a resource of this kind owns.
    func stream(_ id: String) -> StreamName {
        switch self {
        case .thread: .chat(id)
        case .canvas: .canvas(id)
        }
    }

    /// The scope area that governs it.
    var area: RequestContext.Area {
        switch self {
        case .thread: .chat
        case .canvas: .canvas
        }
    }
}

/// A thread or canvas, and the (tenant, env) it belongs to.
public struct Resource: Sendable, Equatable {
    public let id: String
    public let kind: ResourceKind
    public let tenant: String
    public let env: String
    public let createdBy: String
    public let createdAt: Date
    public let title: String?
    public let metadata: JSONValue
    /// The head revision of a canvas (0 when empty); 0 for threads.
    public var headRev: Int64

    public var stream: StreamName { kind.stream(id) }
}

/// Random ids: a kind prefix and 26 characters of base32 (130 bits).
enum Identifier {
    private static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567")

    /// One id from one random draw (three 64-bit words, each a system call
    /// at most), not one draw per character.
    static func make(prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        var words = (generator.next() as UInt64, generator.next() as UInt64, generator.next() as UInt64)
        var characters = [Character]()
        characters.reserveCapacity(26)
        for index in 0..<26 {
            // 5 bits a character: 12 from each of the first two words, 2 from the third.
            switch index {
            case 0..<12: characters.append(alphabet[Int(words.0 & 31)]); words.0 >>= 5
            case 12..<24: characters.append(alphabet[Int(words.1 & 31)]); words.1 >>= 5
            default: characters.append(alphabet[Int(words.2 & 31)]); words.2 >>= 5
            }
        }
        return prefix + String(characters)
    }

    /// Whether `id` has the shape of an id with this prefix.
    static func isWellFormed(_ id: String, prefix: String) -> Bool {
        id.hasPrefix(prefix) && id.count == prefix.count + 26
            && id.dropFirst(prefix.count).allSatisfy { alphabet.contains($0) }
    }
}

extension Date {
    /// Now, cut to the millisecond the store keeps, so a resource read back
    /// equals the one created.
    static var nowToTheMillisecond: Date {
        Date(timeIntervalSince1970: (Date().timeIntervalSince1970 * 1000).rounded(.down) / 1000)
    }
}
