import Foundation

/// Runs the sockets of a load run through its phases: connect all, send for
/// the duration, drain in-flight frames, close; and times them.
struct LoadgenDriver: Sendable {
    /// Timings and the counts taken when sending stopped.
    struct Phases: Sendable {
        var setup: Double = 0
        var elapsed: Double = 0
        var ackedAtStop = 0
        var deliveredAtStop = 0
        /// CPU seconds spent during the sending window (setup excluded) by the server, when
        /// its pid was given, and by this process.
        var serverCPU: Double?
        var ownCPU: Double = 0
    }

    let sockets: [LoadgenSocket]
    let context: LoadgenRunContext
    let progress: LoadgenProgress

    private static let connectTimeout: Duration = .seconds(60)
    /// After the close gate, sockets get this long to finish the close handshake before being cancelled.
    private static let closeTimeout: Duration = .seconds(10)
    private static let poll: Duration = .milliseconds(20)
    private static let stall: Duration = .seconds(1)

    func run(duration: Duration, drain: Duration, setupStart: ContinuousClock.Instant, serverPid: Int32? = nil) async -> Phases {
        var phases = Phases()
        await withTaskGroup(of: Bool.self) { group in
            for socket in sockets {
                group.addTask {
                    await socket.run()
                    return true
                }
            }
            await waitForConnects()
            phases.setup = LoadgenClock.seconds(ContinuousClock.now - setupStart)

            let start = ContinuousClock.now
            let cpuBefore = (server: serverPid.flatMap(ProcessCPU.seconds(pid:)), own: ProcessCPU.ownSeconds())
            context.start.open(LoadgenSchedule(start: start, end: start + duration))
            try? await Task.sleep(until: start + duration, clock: .continuous)
            for socket in sockets { socket.stopSending() }
            if let before = cpuBefore.server, let after = serverPid.flatMap(ProcessCPU.seconds(pid:)) {
                phases.serverCPU = after - before
            }
            phases.ownCPU = ProcessCPU.ownSeconds() - cpuBefore.own
            let (acked, delivered, _) = totals()
            phases.elapsed = LoadgenClock.seconds(ContinuousClock.now - start)
            phases.ackedAtStop = acked
            phases.deliveredAtStop = delivered

            // Drain: wait until every frame is answered and every acked message delivered, or
            // time is up. Deliveries that stall for a while once all acks are in (a receiver
            // socket is gone) end the wait early.
            let drainEnd = ContinuousClock.now + drain
            var lastDelivered = delivered
            var lastProgress = ContinuousClock.now
            while ContinuousClock.now < drainEnd {
                let (acked, delivered, pending) = totals()
                if pending == 0 && delivered >= acked { break }
                if delivered != lastDelivered {
                    lastDelivered = delivered
                    lastProgress = ContinuousClock.now
                } else if pending == 0 && ContinuousClock.now - lastProgress > Self.stall {
                    break
                }
                try? await Task.sleep(for: Self.poll)
            }

            context.close.open(())
            // Sockets still waiting for a connect slot give up; the rest close themselves.
            context.connectSlots.close()
            group.addTask {
                try? await Task.sleep(for: Self.closeTimeout)
                return false
            }
            var finished = 0
            while let isSocket = await group.next() {
                if !isSocket { break }
                finished += 1
                if finished == sockets.count { break }
            }
            group.cancelAll()
        }
        return phases
    }

    /// Waits until every socket connected or failed (bounded), showing progress on a terminal.
    private func waitForConnects() async {
        progress.begin("connect", total: sockets.count)
        let deadline = ContinuousClock.now + Self.connectTimeout
        while ContinuousClock.now < deadline {
            let ready = context.ready.withLock { $0 }
            progress.update(done: ready)
            if ready >= sockets.count { break }
            try? await Task.sleep(for: Self.poll)
        }
        progress.end()
    }

    private func totals() -> (acked: Int, delivered: Int, pending: Int) {
        var result = (acked: 0, delivered: 0, pending: 0)
        for socket in sockets {
            let (counters, pending, open) = socket.snapshot()
            result.acked += counters.acked
            result.delivered += counters.delivered
            // A closed socket's frames will never be answered: do not wait for them.
            if open { result.pending += pending }
        }
        return result
    }
}

/// CPU time (user + system) of a process, for CPU per message over the sending window only:
/// setup (registrations hash passwords) would otherwise be charged to the messages.
enum ProcessCPU {
    /// From `/proc/<pid>/stat` (fields 14 and 15, in clock ticks); nil if unreadable.
    static func seconds(pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command: state is field 3, so utime (14) and stime (15) are at 11 and 12.
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func ownSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return s(usage.ru_utime) + s(usage.ru_stime)
    }
}
