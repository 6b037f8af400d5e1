import Crypto
import Foundation

/// A command against a canvas: `POST /v1/canvases/{id}/commands` and the
/// WebSocket `command` message share this shape.
public struct CanvasCommand: Sendable {
    public let commandID: String
    public let baseRev: Int64
    public let patch: JSONPatch
    /// The operations as sent, stored with the revision and put in the event.
    public let ops: JSONValue
    /// What makes a retry "the same command": base_rev and ops.
    public let fingerprint: String

    /// Parses and validates `{"command_id", "base_rev", "ops"}` against the limits.
    public init(json: JSONValue, limits: CommandLimits) throws {
        var body = try BodyReader(json)
        guard let commandID = try body.string("command_id", maxLength: 128) else {
            throw KernelError.invalid("missing_field", "command_id: required, a string (your idempotency key)")
        }
        guard !commandID.isEmpty, commandID.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.:".contains($0)) }) else {
            throw KernelError.invalid("invalid_field", "command_id: 1 to 128 of A-Z a-z 0-9 - _ . :")
        }
        guard let baseRev = try body.integer("base_rev", range: 0...Int64(Int32.max) * 1024) else {
            throw KernelError.invalid("missing_field", "base_rev: required, the head_rev your change was made against")
        }
        guard let ops = try body.array("ops") else {
            throw KernelError.invalid("missing_field", "ops: required, an array of JSON Patch operations")
        }
        try body.finish()
        guard !ops.isEmpty else { throw KernelError.invalid("invalid_patch", "ops: at least one operation") }
        guard ops.count <= limits.maxOperations else {
            throw KernelError(.tooLarge, code: "too_many_operations",
                           message: "ops: \(ops.count) operations; the limit is \(limits.maxOperations)")
        }
        do {
            patch = try JSONPatch(ops, maxDepth: limits.maxPathDepth)
        } catch {
            throw KernelError(.invalid, code: "invalid_patch", message: "ops[\(error.index)]: \(error.message)",
                           details: ["op_index": .number(Double(error.index))])
        }
        self.commandID = commandID
        self.baseRev = baseRev
        self.ops = .array(ops)
        let canonical = JSONValue.object(["base_rev": .number(Double(baseRev)), "ops": .array(ops)]).encoded()
        fingerprint = SHA256.hash(data: canonical).hex
    }
}

/// Limits on commands and documents, from config.
public struct CommandLimits: Sendable {
    public var maxDocumentBytes: Int
    public var maxOperations: Int
    public var maxPathDepth: Int
    /// How deeply arrays and objects may nest in the document a command
    /// produces. Each command's ops are checked when parsed, but two
    /// commands can stack values into a deeper document; this is checked on
    /// the result, and stays under the 512 levels a stored document must
    /// still parse with.
    public var maxDocumentDepth: Int
    /// A snapshot of the document is kept every this many revisions.
    public var snapshotEvery: Int64

    /// The deepest `maxDocumentDepth` config accepts: stored documents are
    /// read back by a parser that stops at 512 levels.
    public static let documentDepthCeiling = 500

    public init(maxDocumentBytes: Int = 1 << 20, maxOperations: Int = 1000, maxPathDepth: Int = 32,
                maxDocumentDepth: Int = 64, snapshotEvery: Int64 = 64) {
        self.maxDocumentBytes = maxDocumentBytes
        self.maxOperations = maxOperations
        self.maxPathDepth = maxPathDepth
        self.maxDocumentDepth = maxDocumentDepth
        self.snapshotEvery = snapshotEvery
    }
}

/// One stored revision of a canvas.
public struct Revision: Sendable, Equatable {
    public let rev: Int64
    public let baseRev: Int64
    public let commandID: String
    public let actor: String
    public let timestamp: String
    public let ops: JSONValue
    public let eventSeq: UInt64

    var json: JSONValue {
        .object(["rev": .number(Double(rev)), "base_rev": .number(Double(baseRev)), "command_id": .string(commandID),
                 "actor": .string(actor), "ts": .string(timestamp), "ops": ops, "seq": .number(Double(eventSeq))])
    }
}

/// What a commit did.
public enum CommitOutcome: Sendable {
    /// Applied now: the new revision and its event.
    case committed(Revision, StreamEvent)
    /// Applied before under this command_id with the same body.
    case replayed(Revision)
    /// `base_rev` is behind the head.
    case conflict(headRev: Int64)
    /// `base_rev` is ahead of the head.
    case ahead(headRev: Int64)
    /// The command_id was used before with another body.
    case idReused
}

extension CanvasCommand {
    /// The `canvas.committed` event this command makes as revision `rev`:
    /// the same on every store.
    func committedEvent(on canvas: Resource, rev: Int64, actor: String, traceparent: String) -> EventDraft {
        EventDraft(stream: canvas.stream, type: "canvas.committed", actor: actor, traceparent: traceparent, rev: rev,
                   data: .object(["rev": .number(Double(rev)), "base_rev": .number(Double(baseRev)),
                                  "command_id": .string(commandID), "ops": ops]))
    }
}
