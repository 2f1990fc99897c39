import Crypto
import Foundation

/// The writer thread: takes everything queued as one batch, writes it, syncs it per the policy,
/// then resumes the batch's appenders. A write error stops it for good (fail-stop).
extension EventLog {
    func writerLoop() {
        var frameBuffer: [UInt8] = []
        var spare: [UInt8] = []
        while true {
            cond.lock()
            writerState = .idle
            while pending.isEmpty && !closing {
                if let since = writer.unsyncedSince, case let .interval(ms) = options.durability {
                    let deadline = since.addingTimeInterval(Double(ms) / 1000)
                    if !cond.wait(until: deadline) { break }
                } else {
                    cond.wait()
                }
            }
            gather()
            writerState = .busy
            var batch: PendingBatch?
            if !pending.isEmpty {
                let now = DispatchTime.now().uptimeNanoseconds
                if lastTakeNanos > 0, now > lastTakeNanos {
                    let rate = Double(pending.count) * 1e9 / Double(now - lastTakeNanos)
                    arrivalRate = arrivalRate * 0.75 + rate * 0.25
                }
                lastTakeNanos = now
                batch = pending
                pending = PendingBatch()
                spare.removeAll(keepingCapacity: true)
                swap(&pending.raw, &spare)
            }
            let stopping = closing && batch == nil
            cond.unlock()
            do {
                if let batch {
                    try write(batch, buffer: &frameBuffer)
                    if batch.raw.capacity <= 16 << 20 { spare = batch.raw }
                }
                try syncIfDue(force: stopping)
            } catch {
                fail(String(describing: error))
                return
            }
            if stopping { break }
        }
        FileIO.closeFD(writer.fd)
        cond.lock()
        writerFinished = true
        finishSubscribers(throwing: nil)
        cond.unlock()
    }

    /// How many records a batch is held open for: what arrives in `gatherMicros` at the
    /// observed rate (at most 256), or nil when fewer than 2 would (waiting would gather
    /// nothing and only delay the ack). Only `.always` gathers: it pays one fsync per batch,
    /// about 75 µs of CPU on this project's VMs (virtio exits) besides the disk's time.
    func gatherTarget() -> Int? {
        guard case .always = options.durability, options.gatherMicros > 0 else { return nil }
        let expected = arrivalRate * Double(options.gatherMicros) / 1e6
        return expected >= 2 ? min(Int(expected), 256) : nil
    }

    /// Holds the pending batch open until it reaches `gatherTarget()` records or `gatherMicros`
    /// have passed since its first record. Caller holds `cond`.
    private func gather() {
        guard !closing, !pending.isEmpty, let target = gatherTarget(), pending.count < target else { return }
        writerState = .gathering(target)
        let deadline = pending.firstArrivalNanos + UInt64(options.gatherMicros) * 1000
        while pending.count < target && !closing {
            let now = DispatchTime.now().uptimeNanoseconds
            guard now < deadline else { break }
            _ = cond.wait(until: Date(timeIntervalSinceNow: Double(deadline - now) / 1e9))
        }
    }

    private func write(_ batch: PendingBatch, buffer: inout [UInt8]) throws {
        if writer.size >= options.segmentBytes && writer.size > 0 {
            try roll(firstSeq: batch.firstSeq)
        }
        cond.lock()
        let prev = headHash
        cond.unlock()
        buffer.removeAll(keepingCapacity: true)
        buffer.append(contentsOf: repeatElement(0, count: BatchHeader.encodedSize))
        let (frameLength, recordsHash) = try batch.raw.withUnsafeBytes { raw in
            (try LZ4Frame.compress(raw, appendingTo: &buffer), Array(SHA256.hash(data: raw)))
        }
        let header = BatchHeader(
            count: UInt32(batch.count), firstSeq: batch.firstSeq,
            firstTimestamp: batch.firstTimestamp, lastTimestamp: batch.lastTimestamp,
            rawLength: UInt32(batch.raw.count), frameLength: UInt32(frameLength),
            prevHash: prev, recordsHash: recordsHash)
        var headerBytes: [UInt8] = []
        header.encode(into: &headerBytes)
        buffer.replaceSubrange(0..<BatchHeader.encodedSize, with: headerBytes)
        if withCond({ injectWriteError }) { throw EventLogError.io("write \(writer.path): injected I/O error") }
        let delay = withCond { injectWriteDelay }
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
        try buffer.withUnsafeBytes { try FileIO.writeFully(writer.fd, $0, path: writer.path) }
        let offset = writer.size
        writer.size += buffer.count
        switch options.durability {
        case .always:
            try timedSync()
            writer.lastSync = Date()
        case .interval:
            if writer.unsyncedSince == nil { writer.unsyncedSince = Date() }
        case .never:
            break
        }
        if let mirror = options.mirror {
            let started = DispatchTime.now().uptimeNanoseconds
            try mirror.store(StoredBatch(firstSeq: batch.firstSeq, lastSeq: batch.firstSeq + UInt64(batch.count) - 1,
                                         prevHash: prev, headerHash: header.headerHash, bytes: buffer))
            let took = DispatchTime.now().uptimeNanoseconds - started
            withCond {
                mirrorCount += 1
                mirrorNanos += took
            }
        }
        indexLock.lock()
        index.batches.append(BatchLocation(
            firstSeq: batch.firstSeq, count: UInt32(batch.count), segment: writer.segment,
            offset: UInt64(offset), frameLength: UInt32(frameLength), rawLength: UInt32(batch.raw.count)))
        indexLock.unlock()
        publish(batch, hash: header.headerHash)
    }

    private func syncIfDue(force: Bool) throws {
        guard let since = writer.unsyncedSince, case let .interval(ms) = options.durability else { return }
        if force || Date().timeIntervalSince(since) * 1000 >= Double(ms) {
            try timedSync()
            writer.unsyncedSince = nil
            writer.lastSync = Date()
        }
    }

    private func timedSync() throws {
        let started = DispatchTime.now().uptimeNanoseconds
        try FileIO.sync(writer.fd, path: writer.path)
        let took = DispatchTime.now().uptimeNanoseconds - started
        withCond {
            syncCount += 1
            syncNanos += took
        }
    }

    /// Seals the active segment and starts `<firstSeq>.seg`.
    func roll(firstSeq: UInt64) throws {
        try FileIO.sync(writer.fd, path: writer.path)
        writer.unsyncedSince = nil
        FileIO.closeFD(writer.fd)
        let path = directory + "/" + Segments.fileName(firstSeq: firstSeq)
        let fd = Foundation.open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw EventLogError.io(FileIO.errnoText("create \(path)")) }
        FileIO.syncDirectory(directory)
        indexLock.lock()
        index.segments.append(path)
        let segment = UInt32(index.segments.count - 1)
        indexLock.unlock()
        writer = ActiveSegment(fd: fd, path: path, size: 0, segment: segment)
    }

    /// Marks the batch durable, resumes its appenders and feeds tail subscribers.
    private func publish(_ batch: PendingBatch, hash: [UInt8]) {
        let last = batch.firstSeq + UInt64(batch.count) - 1
        var ready: [Waiter] = []
        cond.lock()
        durable = last
        headHash = hash
        if let cut = waiters.firstIndex(where: { $0.seq > last }) {
            ready = Array(waiters[..<cut])
            waiters.removeFirst(cut)
        } else {
            ready = waiters
            waiters.removeAll(keepingCapacity: true)
        }
        if !subscribers.isEmpty { feedSubscribers(batch) }
        let listener = durabilityListener
        cond.unlock()
        for waiter in ready { waiter.continuation.resume() }
        listener?(last)
    }

    /// Stops the writer for good: every waiting and later append fails.
    private func fail(_ reason: String) {
        cond.lock()
        failure = reason
        let failed = waiters
        waiters = []
        writerFinished = true
        finishSubscribers(throwing: EventLogError.writerFailed(reason))
        let listener = durabilityListener
        cond.unlock()
        FileIO.closeFD(writer.fd)
        for waiter in failed { waiter.continuation.resume(throwing: EventLogError.writerFailed(reason)) }
        listener?(nil)
    }
}
