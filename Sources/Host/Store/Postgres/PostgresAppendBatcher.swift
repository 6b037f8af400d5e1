import Foundation
import Logging
import NIOCore
import PostgresNIO

/// Group commit for appends on PostgreSQL: appends to one stream that
/// arrive while that stream's previous batch commits go together in the
/// next one, in one transaction: one lock on the stream's row, one
/// statement for all their events, one COMMIT.
///
/// The stream's row lock is what orders appends across nodes, and a
/// transaction holds it until COMMIT; batching means it is taken once per
/// batch instead of once per event. Nobody is answered before the commit.
/// Batches of different streams run side by side, each on its own pooled
/// connection.
final class PostgresAppendBatcher: Sendable {
    /// The most appends one transaction takes, to bound a batch's latency.
    static let maxBatch = 256

    private struct Job: Sendable {
        let draft: EventDraft
        let idempotencyKey: String?
        let fingerprint: String
    }

    private let batches = KeyedBatches<StreamName, Job, AppendOutcome>(maxBatch: maxBatch)

    /// Appends `draft` in its stream's next batch on `store`; returns once that batch committed.
    func append(_ draft: EventDraft, idempotencyKey: String?, fingerprint: String, on store: PostgresStore) async throws -> AppendOutcome {
        try await batches.submit(Job(draft: draft, idempotencyKey: idempotencyKey, fingerprint: fingerprint), key: draft.stream) {
            stream, batch in try await Self.commit(batch, stream: stream, on: store).map { .success($0) }
        }
    }

    /// One transaction for the whole batch: outcomes in the jobs' order.
    private static func commit(_ batch: [Job], stream: StreamName, on store: PostgresStore) async throws -> [AppendOutcome] {
        let retain = store.retainPerStream
        let logger = store.logger
        return try await store.write(writes: batch.count) { connection, appended in
            let head = try await PostgresStore.lockStream(stream.rawValue, connection, logger: logger)
            // Keys recorded before this batch (read after the lock: another node's are committed by now).
            let keys = batch.compactMap(\.idempotencyKey)
            var recorded: [String: (fingerprint: String, seq: Int64)] = [:]
            if !keys.isEmpty {
                let rows = try await connection.query("""
                    SELECT key, fingerprint, seq FROM northstar.idempotency WHERE stream = \(stream.rawValue) AND key = ANY(\(keys))
                    """, logger: logger).collect()
                for row in rows {
                    let (key, fingerprint, seq) = try row.decode((String, String, Int64).self)
                    recorded[key] = (fingerprint, seq)
                }
            }
            // Each job: a replay, a reused key, or the next seq (keys repeated inside the batch count too).
            enum Plan { case new(Int), replay(Int64), reused }
            var plans: [Plan] = []
            var drafts: [(draft: EventDraft, key: String?, fingerprint: String)] = []
            for job in batch {
                if let key = job.idempotencyKey, let known = recorded[key] {
                    plans.append(known.fingerprint == job.fingerprint ? .replay(known.seq) : .reused)
                    continue
                }
                if let key = job.idempotencyKey { recorded[key] = (job.fingerprint, head.head + Int64(drafts.count) + 1) }
                plans.append(.new(drafts.count))
                drafts.append((job.draft, job.idempotencyKey, job.fingerprint))
            }
            let events = try await PostgresStore.insertEvents(drafts, stream: stream, head: head, retain: retain, connection,
                                                              appended, logger: logger)
            let byNewSeq = Dictionary(uniqueKeysWithValues: events.map { (Int64($0.seq), $0) })
            var outcomes: [AppendOutcome] = []
            for (job, plan) in zip(batch, plans) {
                switch plan {
                case .new(let index): outcomes.append(.appended(events[index]))
                case .reused: outcomes.append(.keyReused)
                case .replay(let seq):
                    if let event = byNewSeq[seq] {
                        outcomes.append(.replayed(event))
                    } else {
                        outcomes.append(.replayed(try await PostgresStore.event(stream, seq: UInt64(seq), type: job.draft.type,
                                                                                connection, logger: logger)))
                    }
                }
            }
            return outcomes
        }
    }
}
