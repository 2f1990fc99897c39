import Foundation
import NIOCore
import NIOPosix
import Projections

/// One timer for every session expiry: armed for the earliest one the Ledger knows, so a
/// session whose refresh token expires ends then (its sockets close), not at the next request.
/// Sessions slide forward on refresh, so a new expiry is rarely earlier than the armed one;
/// when it is, the timer is re-armed.
final class SessionExpiryTimer: @unchecked Sendable {
    private let lock = NSLock()
    let loop: any EventLoop = MultiThreadedEventLoopGroup.singleton.any()
    private var scheduled: Scheduled<Void>?
    private var deadline: Int64 = .max
    private var fire: (@Sendable () -> Void)?

    /// Sets what runs when the timer fires (the service's expiry pass).
    func start(_ fire: @escaping @Sendable () -> Void) {
        lock.withLock { self.fire = fire }
    }

    /// Arms the timer for `micros` (µs since the epoch) unless it is armed earlier already.
    func schedule(at micros: Int64) {
        lock.withLock {
            guard micros < deadline else { return }
            scheduled?.cancel()
            deadline = micros
            let now = currentMicros()
            scheduled = loop.scheduleTask(in: .microseconds(max(micros - now, 0))) { self.fired() }
        }
    }

    private func fired() {
        let fire = lock.withLock {
            deadline = .max
            scheduled = nil
            return self.fire
        }
        fire?()
    }

    func cancel() {
        lock.withLock {
            scheduled?.cancel()
            scheduled = nil
            fire = nil
        }
    }
}
