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

/// A server process started serving. Alone on its log (`shared` false), sockets of earlier
/// epochs count as closed, because a crash never gets to write their `SocketDisconnected`.
/// One of several nodes on a shared log (`shared`) leaves the other epochs' sockets open:
/// other nodes still serve them; a dead node's are closed by `NodeLeft`.
public struct ServerStarted: Sendable, Equatable {
    public var epoch: UInt64
    public var shared: Bool

    public init(epoch: UInt64, shared: Bool = false) {
        self.epoch = epoch
        self.shared = shared
    }
}

/// A serving node of a shared log stopped, or was found dead (no heartbeat): the sockets of
/// its epoch count as closed.
public struct NodeLeft: Sendable, Equatable {
    public var epoch: UInt64

    public init(epoch: UInt64) {
        self.epoch = epoch
    }
}
