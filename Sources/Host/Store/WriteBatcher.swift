import Dispatch
import NIOConcurrencyHelpers

/// Group commit for the one writer connection.
///
/// Writes queue up while the previous batch is committing; the next batch
/// runs them all in one transaction, each inside its own SAVEPOINT (so one
/// write that throws is rolled back alone and the others still commit),
/// then commits once: one fsync for the whole batch. Nobody is answered
/// before that commit, and events are published only after it, in order.
final class WriteBatcher: Sendable {
    /// One queued write: runs inside the batch, answered after the commit.
    private final class Job: @unchecked Sendable {
        let run: (SQLiteConnection, inout [StreamEvent]) -> Bool
        let finish: ((any Error)?) -> Void
        init(run: @escaping (SQLiteConnection, inout [StreamEvent]) -> Bool, finish: @escaping ((any Error)?) -> Void) {
            self.run = run
            self.finish = finish
        }
    }

    /// Holds a job's result between its run and the commit.
    private final class Outcome<T>: @unchecked Sendable {
        var result: Result<T, any Error>?
    }

    private let connection: SQLiteConnection
    private let publish: @Sendable (StreamEvent) -> Void
    private let queue = DispatchQueue(label: "northstar.store.write")
    private let pending = NIOLockedValueBox<(jobs: [Job], scheduled: Bool)>(([], false))
    /// The most writes one transaction takes, to bound the latency of a batch.
    private let maxBatch = 512

    private let health: StoreHealth
    /// Told of each committed batch: how long the transaction took, how long
    /// its COMMIT (the WAL write and fsync) took, and how many writes it held.
    private let observe: @Sendable (CommitTimings) -> Void

    init(connection: SQLiteConnection, health: StoreHealth, publish: @escaping @Sendable (StreamEvent) -> Void,
         observe: @escaping @Sendable (CommitTimings) -> Void = { _ in }) {
        self.connection = connection
        self.health = health
        self.publish = publish
        self.observe = observe
    }

    /// Queues `body` and waits until its batch has committed.
    func submit<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection, inout [StreamEvent]) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let outcome = Outcome<T>()
            let job = Job(
                run: { db, events in
                    do {
                        outcome.result = .success(try body(db, &events))
                        return true
                    } catch {
                        outcome.result = .failure(error)
                        return false
                    }
                },
                finish: { [health] commitError in
                    // A full or read-only store is answered as such (503), never as a bare internal error.
                    if let commitError { return continuation.resume(throwing: health.classify(commitError)) }
                    continuation.resume(with: outcome.result!.mapError { health.classify($0) })
                })
            let schedule = pending.withLockedValue { pending -> Bool in
                pending.jobs.append(job)
                defer { pending.scheduled = true }
                return !pending.scheduled
            }
            if schedule { queue.async { self.drain() } }
        }
    }

    /// Runs one batch. On the writer queue only.
    private func drain() {
        let jobs = pending.withLockedValue { pending -> [Job] in
            let batch = Array(pending.jobs.prefix(maxBatch))
            pending.jobs.removeFirst(batch.count)
            pending.scheduled = !pending.jobs.isEmpty
            return batch
        }
        if pending.withLockedValue({ $0.scheduled }) { queue.async { self.drain() } }
        guard !jobs.isEmpty else { return }

        var events: [StreamEvent] = []
        let clock = ContinuousClock()
        let began = clock.now
        var committing = began
        do {
            try connection.execute("BEGIN IMMEDIATE")
            for job in jobs {
                try connection.execute("SAVEPOINT write")
                var written: [StreamEvent] = []
                if job.run(connection, &written) {
                    events += written
                } else {
                    try connection.execute("ROLLBACK TO write")
                }
                try connection.execute("RELEASE write")
            }
            committing = clock.now
            try connection.execute("COMMIT")
        } catch {
            try? connection.execute("ROLLBACK")
            jobs.forEach { $0.finish(error) }
            return
        }
        let committed = clock.now
        health.wrote()
        events.forEach(publish)
        observe(CommitTimings(transaction: committed - began, commit: committed - committing, writes: jobs.count))
        jobs.forEach { $0.finish(nil) }
    }
}

/// One committed batch, as `/metrics` reports it.
public struct CommitTimings: Sendable {
    /// BEGIN to COMMIT done: every write of the batch, and the commit.
    public let transaction: Duration
    /// The COMMIT alone: the WAL write and its fsync.
    public let commit: Duration
    /// How many writes the batch held.
    public let writes: Int
}
