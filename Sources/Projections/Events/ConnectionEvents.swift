/// A WebSocket opened. `socketId` is unique within the server epoch.
public struct SocketConnected: Sendable, Equatable {
    public var userId: UInt32
    public var socketId: UInt64

    public init(userId: UInt32, socketId: UInt64) {
        self.userId = userId
        self.socketId = socketId
    }
}

/// A WebSocket closed.
public struct SocketDisconnected: Sendable, Equatable {
    public var userId: UInt32
    public var socketId: UInt64

    public init(userId: UInt32, socketId: UInt64) {
        self.userId = userId
        self.socketId = socketId
    }
}

/// A server process started serving. Sockets of earlier epochs count as closed,
/// because a crash never gets to write their `SocketDisconnected`.
public struct ServerStarted: Sendable, Equatable {
    public var epoch: UInt64

    public init(epoch: UInt64) {
        self.epoch = epoch
    }
}
