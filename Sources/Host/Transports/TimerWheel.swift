import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// What the wheel holds: it fires `interval` after it was added, and again
/// every `interval` while it `repeats` and was not removed.
protocol WheelTimer: AnyObject, Sendable {
    var interval: TimeAmount { get }
    var repeats: Bool { get }
    /// Guarded by the wheel's lock: where the timer waits (its slot and its
    /// index there; nil while it fires), and whether it is on the wheel at
    /// all (false until added, once removed, and once a one-shot has fired).
    var place: (slot: Int, index: Int)? { get set }
    var onWheel: Bool { get set }
    func fire()
}

/// The per-stream timers, on one hashed wheel: the plugins' repeating
/// timers (`timer_start`, an SSE stream's heartbeat) and each subscription's
/// token-expiry watch.
///
/// A server holding tens of thousands of streams holds as many of each. One
/// NIO scheduled task each costs 0.2 to 0.7 KiB (the task, its closure, its
/// promise, its slot in the loop's heap); an entry here costs 24 bytes beside
/// the timer. The wheel turns every `tick` while it holds a timer,
/// processing one slot per turn: a timer fires between its interval and one
/// tick later, which heartbeats, pings and expiry do not notice. The
/// plugins' one-shot timers (`timer_once`) stay on NIO's scheduler, where a
/// short delay is kept to the millisecond.
final class TimerWheel: @unchecked Sendable {
    static let shared = TimerWheel(loop: MultiThreadedEventLoopGroup.singleton.next())

    /// One timer in a slot: it fires when its slot comes round with `rounds` at 0.
    private struct Entry {
        let timer: any WheelTimer
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

    /// Starts `timer`: its first firing is one interval from now. A timer
    /// that fires once may be added again once it has fired (from its own
    /// `fire`, too); one that is on the wheel already is left as it is.
    func add(_ timer: any WheelTimer) {
        lock.withLock {
            guard !timer.onWheel else { return }
            timer.onWheel = true
            place(timer)
            count += 1
            if turning == nil {
                turning = loop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { [weak self] _ in self?.turn() }
            }
        }
    }

    /// Stops `timer` (it is never placed again), whether waiting or firing
    /// now; nothing happens if it is not on the wheel.
    func remove(_ timer: any WheelTimer) {
        lock.withLock {
            guard timer.onWheel else { return }
            // In O(1), whatever the slot holds: the last entry takes its place.
            if let (slot, index) = timer.place {
                let last = slots[slot].removeLast()
                if index < slots[slot].count {
                    slots[slot][index] = last
                    last.timer.place = (slot, index)
                }
            }
            timer.place = nil
            takeOut(timer)
        }
    }

    /// Counts `timer` out (it is out of its slot already), and stops the
    /// wheel once it holds nothing. Under `lock`.
    private func takeOut(_ timer: any WheelTimer) {
        timer.onWheel = false
        count -= 1
        if count == 0 {
            turning?.cancel()
            turning = nil
        }
    }

    /// One turn: fires the slot's due timers (outside the lock, so a timer
    /// may cancel itself or others, or add itself again), then places each
    /// repeating one again unless removed.
    private func turn() {
        let due: [any WheelTimer] = lock.withLock {
            var due: [any WheelTimer] = []
            var waiting: [Entry] = []
            for var entry in slots[cursor] {
                if entry.rounds == 0 {
                    entry.timer.place = nil
                    if !entry.timer.repeats { takeOut(entry.timer) }
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
            if timer.repeats { lock.withLock { if timer.onWheel { place(timer) } } }
        }
    }

    /// Puts `timer` in the slot the wheel reaches one interval from now, or
    /// up to a tick later: the turn in progress counts for nothing, so the
    /// slot is `ticks` whole turns past the next. Under `lock`.
    private func place(_ timer: any WheelTimer) {
        let ticks = max(1, Int((timer.interval.nanoseconds + tick.nanoseconds - 1) / tick.nanoseconds))
        let slot = (cursor + ticks) % slots.count
        timer.place = (slot, slots[slot].count)
        slots[slot].append(Entry(timer: timer, rounds: ticks / slots.count))
    }
}
