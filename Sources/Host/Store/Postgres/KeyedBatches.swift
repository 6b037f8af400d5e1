import NIOConcurrencyHelpers

/// Group commit's queueing, by key (a stream, a canvas): jobs for one key
/// that arrive while that key's batch runs wait and go together in the
/// next batch; batches of different keys run side by side.
///
/// `run` gets a batch in arrival order and answers each job, in the same
/// order, with its own outcome or failure; if it throws, every job of the
/// batch gets that error.
final class KeyedBatches<Key: Hashable & Sendable, Job: Sendable, Outcome: Sendable>: Sendable {
    typealias Run = @Sendable (Key, [Job]) async throws -> [Result<Outcome, any Error>]

    private struct Waiting: Sendable {
        let job: Job
        let answer: CheckedContinuation<Outcome, any Error>
    }

    private struct Queues {
        var waiting: [Key: [Waiting]] = [:]
        /// Keys with a batch under way: new jobs wait for the next one.
        var running: Set<Key> = []
    }

    private let queues = NIOLockedValueBox(Queues())
    private let maxBatch: Int

    init(maxBatch: Int) {
        self.maxBatch = maxBatch
    }

    /// Queues `job` under `key`; returns its outcome once its batch has run.
    func submit(_ job: Job, key: Key, run: @escaping Run) async throws -> Outcome {
        try await withCheckedThrowingContinuation { answer in
            let start = queues.withLockedValue { queues -> Bool in
                queues.waiting[key, default: []].append(Waiting(job: job, answer: answer))
                return queues.running.insert(key).inserted
            }
            // Detached: a batch serves many requests, not the one that happened to start it.
            if start { Task.detached { [self] in await drain(key, run: run) } }
        }
    }

    /// Runs batches for `key` until nothing waits.
    private func drain(_ key: Key, run: Run) async {
        while true {
            let batch = queues.withLockedValue { queues -> [Waiting] in
                let waiting = queues.waiting[key] ?? []
                let taken = Array(waiting.prefix(maxBatch))
                queues.waiting[key] = taken.count == waiting.count ? nil : Array(waiting.dropFirst(taken.count))
                if taken.isEmpty { queues.running.remove(key) }
                return taken
            }
            guard !batch.isEmpty else { return }
            do {
                let outcomes = try await run(key, batch.map(\.job))
                precondition(outcomes.count == batch.count, "a batch must answer every job")
                for (waiting, outcome) in zip(batch, outcomes) { waiting.answer.resume(with: outcome) }
            } catch {
                for waiting in batch { waiting.answer.resume(throwing: error) }
            }
        }
    }
}
