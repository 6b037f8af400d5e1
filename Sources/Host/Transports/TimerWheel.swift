import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The plugins' repeating timers (`timer_start`), on one hashed wheel.
///
/// Every open SSE stream has a heartbeat timer, so a server holding tens of
/// thousands of streams holds as many timers. One NIO repeated task each
/// costs about 0.7 KiB (the task, its rescheduling closure, its promise, its
/// slot in the loop's heap); an entry here costs 16 bytes beside the timer.
/// The wheel turns every `tick` while it holds a timer, processing one slot
/// per turn: a timer fires between its interval and one tick later, which
/// heartbeats and pings do not notice. One-shot timers (`timer_once`) stay
/// on NIO's scheduler, where a short delay is kept to the millisecond.
final class TimerWheel: @unchecked Sendable {
    static let shared = TimerWheel(loop: MultiThreadedEventLoopGroup.singleton.next())

    /// One timer in a slot: it fires when its slot comes round with `rounds` at 0.
    private struct Entry {
        let timer: HostTimer
        var rounds: Int
    }

    let tick: TimeAmount
    private let loop: any EventLoop
    private let lock = NIOLock()
    // Guarded by `lock`.
    private var slots: [[Entry]]
    private var cursor = 0      // the slot the next turn processes
    private var count = 0
    private var turning: RepeatedTask?

    init(loop: any EventLoop, tick: TimeAmount = .milliseconds(10), slotCount: Int = 512) {
        self.loop = loop
        self.tick = tick
        slots = Array(repeating: [], count: slotCount)
    }

    /// How many timers the wheel holds (for tests).
    var timerCount: Int { lock.withLock { count } }

    /// Starts `timer`: its first firing is one interval from now.
    func add(_ timer: HostTimer) {
        lock.withLock {
            place(timer)
            count += 1
            if turning == nil {
                turning = loop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { [weak self] _ in self?.turn() }
            }
        }
    }

    /// Stops `timer` (it is never placed again), whether waiting or firing now.
    func remove(_ timer: HostTimer) {
        lock.withLock {
            guard !timer.removed else { return }
            timer.removed = true
            count -= 1
            // In O(1), whatever the slot holds: the last entry takes its place.
            if let (slot, index) = timer.place {
                let last = slots[slot].removeLast()
                if index < slots[slot].count {
                    slots[slot][index] = last
                    last.timer.place = (slot, index)
                }
            }
            timer.place = nil
            if count == 0 {
                turning?.cancel()
                turning = nil
            }
        }
    }

    /// One turn: fires the slot's due timers (outside the lock, so a timer
    /// may cancel itself or others), then places each again unless removed.
    private func turn() {
        let due: [HostTimer] = lock.withLock {
            var due: [HostTimer] = []
            var waiting: [Entry] = []
            for var entry in slots[cursor] {
                if entry.rounds == 0 {
                    entry.timer.place = nil
                    due.append(entry.timer)
                } else {
                    entry.rounds -= 1
                    entry.timer.place = (cursor, waiting.count)
                    waiting.append(entry)
                }
            }
            slots[cursor] = waiting
            cursor = (cursor + 1) % slots.count
            return due
        }
        for timer in due {
            timer.fire()
            lock.withLock { if !timer.removed { place(timer) } }
        }
    }

    /// Puts `timer` in the slot the wheel reaches one interval from now, or
    /// up to a tick later: the turn in progress counts for nothing, so the
    /// slot is `ticks` whole turns past the next. Under `lock`.
    private func place(_ timer: HostTimer) {
        let ticks = max(1, Int((timer.interval.nanoseconds + tick.nanoseconds - 1) / tick.nanoseconds))
        let slot = (cursor + ticks) % slots.count
        timer.place = (slot, slots[slot].count)
        slots[slot].append(Entry(timer: timer, rounds: ticks / slots.count))
    }
}
