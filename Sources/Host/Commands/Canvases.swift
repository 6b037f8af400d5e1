import Foundation

/// Canvases: a JSON document per canvas, changed only by commands that name
/// the revision they were made against.
public struct Canvases: Sendable {
    let store: any EventStore
    let resolver: ResourceResolver
    let limits: CommandLimits

    /// Creates an empty canvas (`{}` at `head_rev` 0).
    public func create(_ request: CreateResourceRequest, context: RequestContext) async throws -> Resource {
        try await resolver.create(.canvas, request, for: context)
    }

    /// Applies a command if its `base_rev` is the head; see `CommitOutcome`.
    /// - Throws: `KernelError` for every refusal, with nothing written.
    public func commit(_ command: CanvasCommand, canvasID: String, context: RequestContext) async throws -> CommandResult {
        let canvas = try await resolver.resolve(.canvas, id: canvasID, for: context, access: .write)
        let limits = self.limits
        let outcome = try await store.commit(command, canvas: canvas, actor: context.userID, traceparent: context.traceparent,
                                             snapshotEvery: limits.snapshotEvery) { document in
            let updated: JSONValue
            do {
                updated = try command.patch.apply(to: document, copyBudget: limits.maxDocumentBytes)
            } catch let error as JSONPatch.ApplyError {
                throw KernelError(error.overCopyBudget ? .tooLarge : .unprocessable,
                               code: error.overCopyBudget ? "document_too_large" : "patch_failed",
                               message: "ops[\(error.index)]: \(error.message)",
                               details: ["op_index": .number(Double(error.index))])
            }
            // Bounded work from here: with its copies within their budget, the
            // document's text is at most the stored document's, the request's
            // values and the budget together, and so is measuring it.
            let depth = updated.depth
            guard depth <= limits.maxDocumentDepth else {
                throw KernelError(.unprocessable, code: "document_too_deep",
                               message: "the document would nest \(depth) levels deep; the limit is \(limits.maxDocumentDepth)")
            }
            let size = updated.encoded().count
            guard size <= limits.maxDocumentBytes else {
                throw KernelError(.tooLarge, code: "document_too_large",
                               message: "the document would be \(size) bytes; the limit is \(limits.maxDocumentBytes)")
            }
            return updated
        }
        switch outcome {
        case .committed(let revision, _): return CommandResult(revision: revision, replayed: false)
        case .replayed(let revision): return CommandResult(revision: revision, replayed: true)
        case .conflict(let headRev):
            throw KernelError(.conflict, code: "rev_conflict",
                           message: "base_rev \(command.baseRev) is behind head_rev \(headRev): fetch the revisions you missed, rebase, and send a new command",
                           details: ["head_rev": .number(Double(headRev)), "base_rev": .number(Double(command.baseRev)),
                                     "missed": .string("/v1/canvases/\(canvas.id)/revisions?after=\(command.baseRev)")])
        case .ahead(let headRev):
            throw KernelError(.unprocessable, code: "base_rev_ahead",
                           message: "base_rev \(command.baseRev) is ahead of head_rev \(headRev)",
                           details: ["head_rev": .number(Double(headRev))])
        case .idReused:
            throw KernelError(.conflict, code: "command_id_reused",
                           message: "command_id \"\(command.commandID)\" was already used with a different base_rev or ops")
        }
    }

    /// The document at `rev` (nil: the head), rebuilt from the nearest snapshot.
    /// `headSeq` is the canvas stream's last seq, read before the document: a
    /// client that follows the stream after it, skipping commits up to `rev`,
    /// misses nothing.
    public func document(canvasID: String, rev: Int64?, context: RequestContext)
        async throws -> (rev: Int64, document: JSONValue, resource: Resource, headSeq: UInt64) {
        let canvas = try await resolver.resolve(.canvas, id: canvasID, for: context, access: .read)
        let headSeq = try await store.events(stream: canvas.stream, after: 0, limit: 0).headSeq
        let head = try await store.head(canvas: canvas.id)
        guard let rev, rev != head.rev else { return (head.rev, head.document, canvas, headSeq) }
        guard rev < head.rev else {
            throw KernelError(.notFound, code: "revision_not_found", message: "rev \(rev) is past head_rev \(head.rev)",
                           details: ["head_rev": .number(Double(head.rev))])
        }
        let snapshot = try await store.snapshot(canvas: canvas.id, atOrBelow: rev)
        var document = snapshot.document
        var applied = snapshot.rev
        // Page by page: the operations between snapshots may be many large
        // commands, and one read holds a page of them, not all. Revisions are
        // never changed once written, so pages read apart still agree.
        while applied < rev {
            let page = try await store.revisions(canvas: canvas.id, after: applied, limit: Int(rev - applied))
            guard let last = page.last else {
                throw StoreCorruption(column: "revisions", why: "canvas \(canvas.id) has no revision \(applied + 1) below its head \(head.rev)")
            }
            for revision in page {
                // Stored operations were validated when committed.
                document = try JSONPatch(revision.ops.arrayValue ?? [], maxDepth: .max).apply(to: document)
            }
            applied = last.rev
        }
        return (rev, document, canvas, headSeq)
    }

    /// A page of revisions after `after`.
    public func revisions(canvasID: String, after: Int64, limit: Int, context: RequestContext) async throws -> (revisions: [Revision], headRev: Int64) {
        let canvas = try await resolver.resolve(.canvas, id: canvasID, for: context, access: .read)
        let head = try await store.head(canvas: canvas.id)
        guard after <= head.rev else {
            throw KernelError(.invalid, code: "after_past_head", message: "after=\(after) is past head_rev \(head.rev)",
                           details: ["head_rev": .number(Double(head.rev))])
        }
        return (try await store.revisions(canvas: canvas.id, after: after, limit: limit), head.rev)
    }
}

/// The answer to a command.
public struct CommandResult: Sendable {
    public let revision: Revision
    public let replayed: Bool

    public var json: JSONValue {
        .object(["rev": .number(Double(revision.rev)), "base_rev": .number(Double(revision.baseRev)),
                 "command_id": .string(revision.commandID), "seq": .number(Double(revision.eventSeq)),
                 "replayed": .bool(replayed)])
    }
}
