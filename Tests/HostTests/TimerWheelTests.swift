import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
@testable import NorthstarHost
import PluginAPI
import Testing

/// What a timer's `fire` saw: when it ran, and (to cancel from inside) its own handle.
private final class Firings: @unchecked Sendable {
    private let state = NIOLockedValueBox<[ContinuousClock.Instant]>([])
    let started = ContinuousClock.now
    /// The timer's own handle, for a fire that cancels it. Set under the
    /// lock while the timer is made, so a fire that comes first waits for it.
    let cancelInside = NIOLockedValueBox<OpaquePointer?>(nil)

    var times: [ContinuousClock.Instant] { state.withLockedValue { $0 } }
    var count: Int { times.count }
    func record() { state.withLockedValue { $0.append(.now) } }
    var context: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    static let fire: ns_timer_fn = { context in
        let firings = Unmanaged<Firings>.fromOpaque(context!).takeUnretainedValue()
        firings.record()
        if let own = firings.cancelInside.withLockedValue({ $0 }) { HostTimer.cancel(own) }
    }

    /// Waits (bounded) until `count` reaches `wanted`.
    func wait(for wanted: Int, within limit: Duration = .seconds(10)) async throws {
        let deadline = ContinuousClock.now + limit
        while count < wanted, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
    }
}

@Suite struct TimerWheelTests {
    private func wheel(tick: Int64 = 2, slots: Int = 512) -> TimerWheel {
        TimerWheel(loop: MultiThreadedEventLoopGroup.singleton.next(), tick: .milliseconds(tick), slotCount: slots)
    }

    @Test("a repeating timer fires again and again, never before its interval")
    func firesRepeatedly() async throws {
        let wheel = wheel()
        let firings = Firings()
        let timer = HostTimer(interval: .milliseconds(20), fire: Firings.fire, context: firings.context, wheel: wheel)
            .retainForPlugin()
        try await firings.wait(for: 3)
        HostTimer.cancel(timer)
        let times = firings.times
        #expect(times.count >= 3)
        #expect(times[0] - firings.started >= .milliseconds(20))
        for (earlier, later) in zip(times, times.dropFirst()) { #expect(later - earlier >= .milliseconds(20)) }
    }

    @Test("after cancel returns the timer never fires, and an empty wheel stops turning")
    func cancelStops() async throws {
        let wheel = wheel()
        let firings = Firings()
        let timer = HostTimer(interval: .milliseconds(10), fire: Firings.fire, context: firings.context, wheel: wheel)
            .retainForPlugin()
        try await firings.wait(for: 1)
        HostTimer.cancel(timer)
        let seen = firings.count
        #expect(wheel.timerCount == 0)
        try await Task.sleep(for: .milliseconds(100))
        #expect(firings.count == seen)
    }

    @Test("a timer may cancel itself from inside its own fire")
    func cancelInsideFire() async throws {
        let wheel = wheel()
        let firings = Firings()
        firings.cancelInside.withLockedValue {
            $0 = HostTimer(interval: .milliseconds(10), fire: Firings.fire, context: firings.context, wheel: wheel).retainForPlugin()
        }
        try await firings.wait(for: 1)
        try await Task.sleep(for: .milliseconds(100))
        #expect(firings.count == 1)
        #expect(wheel.timerCount == 0)
    }

    @Test("an interval longer than one turn of the wheel waits whole rounds")
    func longerThanOneTurn() async throws {
        let wheel = wheel(tick: 1, slots: 4)  // one turn: 4 ms
        let firings = Firings()
        let timer = HostTimer(interval: .milliseconds(30), fire: Firings.fire, context: firings.context, wheel: wheel)
            .retainForPlugin()
        try await firings.wait(for: 2)
        HostTimer.cancel(timer)
        let times = firings.times
        #expect(times.count >= 2)
        #expect(times[0] - firings.started >= .milliseconds(30))
        #expect(times[1] - times[0] >= .milliseconds(30))
    }

    @Test("of many timers sharing slots, the cancelled ones stop and the others go on")
    func manyTimers() async throws {
        let wheel = wheel(tick: 1, slots: 8)
        let all = (0..<200).map { _ in Firings() }
        let timers = all.enumerated().map { index, firings in
            HostTimer(interval: .milliseconds(Int64(5 + index % 7)), fire: Firings.fire, context: firings.context, wheel: wheel)
                .retainForPlugin()
        }
        for firings in all { try await firings.wait(for: 1) }
        #expect(all.allSatisfy { $0.count >= 1 })
        // Cancel every other timer; the rest keep firing.
        for (index, timer) in timers.enumerated() where index % 2 == 0 { HostTimer.cancel(timer) }
        #expect(wheel.timerCount == 100)
        let stopped = all.enumerated().filter { $0.offset % 2 == 0 }.map { ($0.element, $0.element.count) }
        let going = all.enumerated().filter { $0.offset % 2 == 1 }.map { ($0.element, $0.element.count) }
        for (firings, seen) in going { try await firings.wait(for: seen + 2) }
        #expect(going.allSatisfy { $0.0.count >= $0.1 + 2 })
        #expect(stopped.allSatisfy { $0.0.count == $0.1 })
        for (index, timer) in timers.enumerated() where index % 2 == 1 { HostTimer.cancel(timer) }
        #expect(wheel.timerCount == 0)
    }

    @Test("a one-shot entry fires once, is out of the wheel then, and can be added again")
    func oneShot() async throws {
        let wheel = wheel()
        let once = OneShot(after: .milliseconds(10))
        wheel.remove(once)  // never added: nothing to remove, nothing counted
        #expect(wheel.timerCount == 0)
        wheel.add(once)
        wheel.add(once)  // already waiting: left as it is
        #expect(wheel.timerCount == 1)
        try await once.firings.wait(for: 1)
        try await Task.sleep(for: .milliseconds(60))
        #expect(once.firings.count == 1)
        #expect(wheel.timerCount == 0)
        wheel.remove(once)  // fired already: nothing to remove
        #expect(wheel.timerCount == 0)
        wheel.add(once)
        try await once.firings.wait(for: 2)
        #expect(once.firings.count == 2)
        #expect(once.firings.times[0] - once.firings.started >= .milliseconds(10))
        // Removed before it fires, it never does.
        wheel.add(once)
        wheel.remove(once)
        try await Task.sleep(for: .milliseconds(60))
        #expect(once.firings.count == 2)
        #expect(wheel.timerCount == 0)
    }

    @Test("a one-shot entry that adds itself again from its fire, as the expiry watch does, fires until it stops")
    func oneShotAddedFromItsFire() async throws {
        let wheel = wheel()
        let watch = OneShot(after: .milliseconds(4), wheel: wheel, times: 3)
        wheel.add(watch)
        try await watch.firings.wait(for: 3)
        try await Task.sleep(for: .milliseconds(60))
        #expect(watch.firings.count == 3)
        #expect(wheel.timerCount == 0)
        // Removed while it waits between two firings: no more.
        let stopped = OneShot(after: .milliseconds(20), wheel: wheel, times: 100)
        wheel.add(stopped)
        try await stopped.firings.wait(for: 1)
        stopped.stop()
        let seen = stopped.firings.count
        try await Task.sleep(for: .milliseconds(100))
        #expect(stopped.firings.count == seen)
        #expect(wheel.timerCount == 0)
    }
}

/// A one-shot wheel entry, as a subscription's expiry watch is.
private final class OneShot: WheelTimer, @unchecked Sendable {
    let interval: TimeAmount
    var repeats: Bool { false }
    var place: (slot: Int, index: Int)?
    var onWheel = false
    let firings = Firings()
    /// Where it adds itself again from `fire`, until it has fired `times` times.
    private let wheel: TimerWheel?
    private let times: Int

    init(after interval: TimeAmount, wheel: TimerWheel? = nil, times: Int = 1) {
        self.interval = interval
        self.wheel = wheel
        self.times = times
    }

    private let stopped = NIOLockedValueBox(false)

    func fire() {
        firings.record()
        guard let wheel, firings.count < times else { return }
        wheel.add(self)
        // A stop that came while it fired found it off the wheel: take it off again.
        if stopped.withLockedValue({ $0 }) { wheel.remove(self) }
    }

    /// Stops it for good, whether it waits or fires now (as a subscription's cancel does).
    func stop() {
        stopped.withLockedValue { $0 = true }
        wheel?.remove(self)
    }
}
