import Foundation
import NorthstarPluginKit
import PluginAPI

/// The host's side of an `ns_subscription *`: a kernel stream source (a
/// live `Subscription` or a `GestureReplay`) delivered to a transport's C
/// callbacks, in order, from one task.
///
/// OWNERSHIP: retained for the plugin until `subscription_cancel`.
final class HostSubscription: @unchecked Sendable {
    private let subscription: any StreamSource
    private let subscriber: ns_subscriber
    /// Whose subscription this is: it ends when the principal's credential
    /// runs out, unless the transport renewed it (`principal_renew`) before.
    private let principal: Principal
    private let gate = PluginCallbackGate()
    private var task: Task<Void, Never>?
    private var expiryWatch: Task<Void, Never>?

    init(_ subscription: any StreamSource, subscriber: ns_subscriber, principal: Principal) {
        self.subscription = subscription
        self.subscriber = subscriber
        self.principal = principal
    }

    /// `subscription_position`: the seq of the last event delivered, live writes included.
    var position: UInt64 { subscription.lastDeliveredSeq }

    func retainForPlugin() -> OpaquePointer { OpaquePointer(Unmanaged.passRetained(self).toOpaque()) }

    static func from(_ pointer: OpaquePointer?) -> HostSubscription? {
        guard let pointer else { return nil }
        return Unmanaged<HostSubscription>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }

    /// Starts delivering. Call after the plugin's subscribe completion returned.
    func start() {
        task = Task { [self] in
            do {
                while let item = try await subscription.next() {
                    switch item {
                    case .event(let event):
                        let delivered = gate.run {
                            withNSStr(event.type) { type in
                                event.json.withUnsafeBytes { raw in
                                    subscriber.on_event?(subscriber.context, event.seq, type,
                                                         ns_bytes(ptr: raw.bindMemory(to: UInt8.self).baseAddress, len: UInt64(raw.count)))
                                }
                            }
                        }
                        if !delivered { return }
                    case .gap(let requestedAfter, let firstSeq):
                        gate.run { subscriber.on_gap?(subscriber.context, requestedAfter, firstSeq) }
                    case .overflow(let last):
                        end(ns_status(NS_ERR_TOO_LARGE), "slow consumer: more than the queue limit behind; resume after seq \(last)")
                        return
                    }
                }
                expiryWatch?.cancel()
                if subscription.completes {
                    end(ns_status(NS_OK), "complete: the last seq was \(subscription.lastDeliveredSeq)")
                } else {
                    end(ns_status(NS_ERR_CANCELLED), "the server closed the stream; resume after seq \(subscription.lastDeliveredSeq)")
                }
            } catch let error as UnframeableEvent {
                end(ns_status(NS_ERR_INTERNAL), "the transport could not frame event \(error.seq) (frame_event failed); resume after seq \(subscription.lastDeliveredSeq)")
            } catch {
                end(ns_status(NS_ERR_UNAVAILABLE), "the event log could not be read")
            }
        }
        watchExpiry()
    }

    /// Ends the subscription with NS_ERR_EXPIRED when the principal's
    /// credential runs out; a renewal moves the deadline, and the watch follows.
    private func watchExpiry() {
        guard principal.context.expiresAt != nil else { return }
        expiryWatch = Task { [self] in
            while !Task.isCancelled, let deadline = principal.context.expiresAt {
                let wait = deadline.timeIntervalSinceNow
                if wait <= 0 {
                    end(ns_status(NS_ERR_EXPIRED),
                        "token_expired: the credential has expired; resume after seq \(subscription.lastDeliveredSeq) with a fresh one")
                    subscription.cancel()
                    task?.cancel()
                    return
                }
                try? await Task.sleep(for: .milliseconds(Int64(min(wait, 3600) * 1000) + 1))
            }
        }
    }

    private func end(_ status: ns_status, _ message: String) {
        gate.run { withNSStr(message) { subscriber.on_end?(subscriber.context, status, $0) } }
        gate.close()
    }

    /// `subscription_cancel`: stops delivery; no callback runs after this returns.
    func cancel() {
        gate.close()
        subscription.cancel()
        task?.cancel()
        expiryWatch?.cancel()
    }
}
