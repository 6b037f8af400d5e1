/// Reads a resource's stream for a context, after a `seq`, with the answers
/// the contract promises for an `after` past the head or below what is kept.
public struct StreamReader: Sendable {
    let store: any EventStore
    let resolver: ResourceResolver

    /// Up to `limit` events of the resource's stream after `after`.
    /// - Throws: 400 `after_past_head` beyond the head; 410 `events_expired`
    ///   when retention has pruned events the caller has not seen.
    public func events(_ kind: ResourceKind, id: String, after: UInt64, limit: Int,
                       context: RequestContext) async throws -> EventPage {
        let resource = try await resolver.resolve(kind, id: id, for: context, access: .read)
        let page = try await store.events(stream: resource.stream, after: after, limit: limit)
        guard after <= page.headSeq else {
            throw KernelError(.invalid, code: "after_past_head", message: "after=\(after) is past the stream's head (\(page.headSeq))",
                           details: ["head_seq": .number(Double(page.headSeq))])
        }
        guard after + 1 >= page.firstSeq else {
            throw KernelError(.gone, code: "events_expired",
                           message: "events after \(after) are no longer kept; the stream now starts at seq \(page.firstSeq): re-read the resource, then resume from after=\(page.firstSeq - 1)",
                           details: ["first_seq": .number(Double(page.firstSeq)), "head_seq": .number(Double(page.headSeq))])
        }
        return page
    }
}
