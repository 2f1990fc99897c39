import EventLog
import Foundation

/// A node on a shared log that cannot go on (its writer was fenced out: another node committed
/// at its position first, after the database dropped its connection and with it the turn lock)
/// starts over from the database instead of refusing writes until someone restarts it: nothing
/// it held was acknowledged, and the database holds everything that was.
extension ChatService {
    func restartFromStore(_ reason: String) async {
        guard !stopping.withLockedValue({ $0 }), beginRestart() else { return }
        logger.error("this node cannot go on (\(reason)): closing its sockets and starting again from PostgreSQL; nothing it held was acknowledged")
        let old = takeRunningParts()
        hub.closeAll()
        old.snapshots?.stop()
        if let ledger = old.ledger { await ledger.log.close() }
        // The epoch's row stays: the next join finds it under this node's id and ends it.
        await old.cluster?.stop(epoch: nil)
        await old.store?.close()
        var pause: UInt64 = 200_000_000
        while !stopping.withLockedValue({ $0 }) {
            do {
                try await start()
                logger.notice("serving again after starting over from PostgreSQL")
                break
            } catch {
                logger.error("starting again failed: \(error); retrying")
                try? await Task.sleep(nanoseconds: pause)
                pause = min(pause * 2, 5_000_000_000)
            }
        }
        endRestart()
    }
}
