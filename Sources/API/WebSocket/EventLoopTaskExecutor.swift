import NIOCore

/// Runs a task's jobs on one NIO event loop. A socket's task prefers the loop that owns its
/// channel, so reading a frame, deciding it and writing the answer stay on one thread instead
/// of hopping to the global pool and back for every frame.
public final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    public let loop: any EventLoop

    public init(_ loop: any EventLoop) { self.loop = loop }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        loop.execute { job.runSynchronously(on: executor) }
    }
}
