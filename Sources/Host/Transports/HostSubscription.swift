import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NorthstarPluginKit
import PluginAPI
import Synchronization

/// The host's side of an `ns_subscription *`: a kernel stream source (a
/// live `Subscription` or a `GestureReplay`) delivered to a transport's C
/// callbacks, in order.
///
/// A task reads the source and calls the plugin for each item. For a
/// subscription whose live events the host writes to the connection itself,
/// the task ends once the subscription is live (`.live`): nothing waits per
/// subscriber then, and the end of live delivery arrives as a callback.
///
/// OWNERSHIP: retained for the plugin until `subscription_cancel`.
final class HostSubscription: WheelTimer, @unchecked Sendable {
    private let subscription: any StreamSource
    private let subscriber: ns_subscriber
    /// Whose subscription this is: it ends when the principal's credential
    /// runs out, unless the transport renewed it (`principal_renew`) before.
    private let principal: Principal
    /// Where the expiry watch waits.
    private let wheel: TimerWheel
    /// Where gaps served and catch-up cut-offs are counted (`/metrics`).
    private let metrics: Metrics?
    /// The transport plugin's name, the label of its cut-offs.
    private let transport: String
    /// The subscriber's connection, when its transport named it: the
    /// catch-up is paced by what the client reads.
    private let connection: ConnectionSink?
    private let gate = PluginCallbackGate()
    private let running = NIOLockedValueBox(Running())
    /// Where the client is during the catch-up: the source's position once
    /// the plugin's callback for the last item returned. The source counts
    /// an event as delivered when it hands it out, and the task may then
    /// wait for room in the connection before the plugin gets it.
    private let handed: Synchronization.Atomic<UInt64>
    /// The host writes live events itself from now on (`.live`).
    private let live = Synchronization.Atomic<Bool>(false)

    private struct Running {
        var task: Task<Void, Never>?
        var taskDone = false
        var cancelled = false
    }

    init(_ subscription: any StreamSource, subscriber: ns_subscriber, principal: Principal, wheel: TimerWheel = .shared,
         connection: ConnectionSink? = nil, metrics: Metrics? = nil, transport: String = "") {
        self.subscription = subscription
        self.transport = transport
        self.connection = connection
        self.metrics = metrics
        self.subscriber = subscriber
        self.principal = principal
        self.wheel = wheel
        handed = Synchronization.Atomic(subscription.lastDeliveredSeq)
    }

    /// `subscription_position`: the seq of the last event delivered, live
    /// writes included; where the client resumes. During the catch-up, an
    /// event counts once the plugin's `on_event` for it has returned, never
    /// while it waits for room (telling a client that stopped reading to
    /// resume after an event it never got would lose that event).
    var position: UInt64 {
        live.load(ordering: .acquiring) ? subscription.lastDeliveredSeq : handed.load(ordering: .acquiring)
    }

    func retainForPlugin() -> OpaquePointer { OpaquePointer(Unmanaged.passRetained(self).toOpaque()) }

    static func from(_ pointer: OpaquePointer?) -> HostSubscription? {
        guard let pointer else { return nil }
        return Unmanaged<HostSubscription>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }

    /// Starts delivering. Call after the plugin's subscribe completion returned.
    func start() {
        // A 1.4 subscriber is told when the catch-up is done (`on_live`).
        if PluginStruct.covers(subscriber, through: \.on_live), let onLive = subscriber.on_live,
           let subscription = subscription as? Subscription {
            let (gate, context) = (gate, Callback(function: onLive, context: subscriber.context))
            subscription.whenCaughtUp { gate.run { context.function(context.context) } }
        }
        let tenant = principal.context.tenant.description
        let task = Task { [self] in
            // A finished task's handle is dropped, so nothing of it stays per subscriber.
            defer { running.withLockedValue { $0.task = nil; $0.taskDone = true } }
            // The catch-up's reads take turns with other tenants' (`TenantLines`).
            await ReadingTenant.$named.withValue(tenant) { await deliver() }
        }
        let cancelled = running.withLockedValue { running -> Bool in
            if !running.taskDone { running.task = task }
            return running.cancelled
        }
        if cancelled { task.cancel() } else { watchExpiry() }
    }

    /// Reads the source and hands each item to the plugin, until the
    /// source is live (the host writes from then on) or ends.
    private func deliver() async {
        do {
            while let item = try await subscription.next() {
                switch item {
                case .event(let event):
                    // A backlog goes out as fast as the client reads it; one that
                    // stops reading for the connection's grace is a slow consumer.
                    if let connection, await !connection.waitForRoom(timeout: connection.grace) {
                        connection.cutOff()
                        metrics?.increment("northstar_slow_consumer_cutoffs_total", [("transport", transport)])
                        end(ns_status(NS_ERR_TOO_LARGE),
                            "slow consumer: the client stopped reading the backlog; resume after seq \(position)")
                        return
                    }
                    let delivered = gate.run {
                        withNSStr(event.type) { type in
                            event.json.withUnsafeBytes { raw in
                                subscriber.on_event?(subscriber.context, event.seq, type,
                                                     ns_bytes(ptr: raw.bindMemory(to: UInt8.self).baseAddress, len: UInt64(raw.count)))
                            }
                        }
                    }
                    if !delivered { return }
                    handed.store(subscription.lastDeliveredSeq, ordering: .releasing)
                case .gap(let requestedAfter, let firstSeq):
                    metrics?.increment("northstar_gaps_served_total")
                    gate.run { subscriber.on_gap?(subscriber.context, requestedAfter, firstSeq) }
                    handed.store(subscription.lastDeliveredSeq, ordering: .releasing)
                case .overflow:
                    end(ns_status(NS_ERR_TOO_LARGE), "slow consumer: more than the queue limit behind; resume after seq \(position)")
                    return
                case .live:
                    // The host writes from here on; this task is done.
                    live.store(true, ordering: .releasing)
                    (subscription as? Subscription)?.whenLiveEnds { [self] reason in liveEnded(reason) }
                    return
                }
            }
            if subscription.completes {
                end(ns_status(NS_OK), "complete: the last seq was \(position)")
            } else {
                end(ns_status(NS_ERR_CANCELLED), "the server closed the stream; resume after seq \(position)")
            }
        } catch let error as UnframeableEvent {
            end(ns_status(NS_ERR_INTERNAL),
                "the transport could not frame event \(error.seq) (frame_event failed); resume after seq \(position)")
        } catch {
            end(ns_status(NS_ERR_UNAVAILABLE), "the event log could not be read")
        }
    }

    /// How the host's live delivery ended (on the connection's loop).
    private func liveEnded(_ reason: LiveSink.End) {
        let last = position
        switch reason {
        case .cutOff:
            end(ns_status(NS_ERR_TOO_LARGE), "slow consumer: more than the queue limit behind; resume after seq \(last)")
        case .shutdown:
            end(ns_status(NS_ERR_CANCELLED), "the server closed the stream; resume after seq \(last)")
        case .unframeable(let seq):
            end(ns_status(NS_ERR_INTERNAL), "the transport could not frame event \(seq) (frame_event failed); resume after seq \(last)")
        }
    }

    /// Ends the subscription with NS_ERR_EXPIRED when the principal's
    /// credential runs out; a renewal moves the deadline, and the watch
    /// follows. An entry on the timer wheel, not a task or a NIO timer:
    /// nothing waits per subscriber, and it costs a few bytes here.
    private func watchExpiry() {
        guard let deadline = principal.context.expiresAt else { return }
        let wait = deadline.timeIntervalSinceNow
        guard wait > 0 else { return expire() }
        // Up to an hour at a time: a renewal may have moved the deadline by then.
        interval = .milliseconds(Int64(min(wait, 3600) * 1000) + 1)
        wheel.add(self)
        // A cancel that came meanwhile may have missed the entry just added.
        if running.withLockedValue({ $0.cancelled }) { wheel.remove(self) }
    }

    // The expiry watch's entry on the wheel (`WheelTimer`): it fires once,
    // and `watchExpiry` adds it again while the credential lasts. `interval`
    // is set before each add; `place` and `onWheel` are the wheel's, under its lock.
    private(set) var interval: TimeAmount = .zero
    var repeats: Bool { false }
    var place: (slot: Int, index: Int)?
    var onWheel = false
    func fire() { watchExpiry() }

    private func expire() {
        end(ns_status(NS_ERR_EXPIRED),
            "token_expired: the credential has expired; resume after seq \(position) with a fresh one")
        subscription.cancel()
        running.withLockedValue { $0.task }?.cancel()
    }

    private func end(_ status: ns_status, _ message: String) {
        // The catch-up task, the live sink's loop and the expiry watch may all
        // end it at once: the plugin hears of the end once.
        gate.runLast { withNSStr(message) { subscriber.on_end?(subscriber.context, status, $0) } }
        wheel.remove(self)
    }

    /// `subscription_cancel`: stops delivery; no callback runs after this returns.
    func cancel() {
        gate.close()
        subscription.cancel()
        let task = running.withLockedValue { running in
            running.cancelled = true
            return running.task
        }
        task?.cancel()
        wheel.remove(self)
    }
}
