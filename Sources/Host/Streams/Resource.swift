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

    /// One id from one random draw (17 bytes, one system call): the
    /// bytes' first 130 bits in base32 (RFC 4648's order, lowercase).
    static func make(prefix: String, from random: [UInt8] = RandomBytes.make(17)) -> String {
        precondition(random.count >= 17)
        var bits: UInt32 = 0, available = 0, next = 0
        var characters = [Character]()
        characters.reserveCapacity(26)
        for _ in 0..<26 {
            if available < 5 {
                bits = (bits << 8 | UInt32(random[next])) & 0xFFFF
                next += 1
                available += 8
            }
            available -= 5
            characters.append(alphabet[Int(bits >> UInt32(available) & 31)])
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
