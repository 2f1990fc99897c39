import ArgumentParser
import Foundation
import Logging

/// `chat-es loadgen`: a load generator that speaks only the wire contract
/// (API.md), so the same run can be pointed at chat-es or at the Django peer.
///
/// Setup registers and logs in `--users` fresh users and starts the chats the
/// senders need; then every user opens one WebSocket, the first `--senders`
/// users send to the next `--fanout` users at `--rate` msgs/s in total for
/// `--duration` seconds, and acks and deliveries are measured.
struct LoadgenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadgen",
        abstract: "Load a chat server over its wire contract; report ack/delivery rates and latencies.",
        discussion: """
            Sender i sends to users i+1 … i+fanout (mod users), round robin. Rates count acks \
            (message.ack) and deliveries (message frames on receiver sockets) while sending; \
            latencies run from the first send of a frame to its ack and to its delivery. \
            rate_limited error frames are counted apart from errors and re-sent with the same \
            client_id after a short pause. Only loopback URLs are accepted.
            """
    )

    @Option(help: "Base URL of the server; loopback only (e.g. http://127.0.0.1:8080).")
    var url: String

    @Option(name: .customLong("also-url"), help: ArgumentHelp(
        "Another node serving the same log (repeatable): users' sockets are spread over --url and these round robin, so each sender's receivers sit on other nodes. Set-up requests go to --url.",
        valueName: "url"))
    var otherURLs: [String] = []

    @Option(help: "Users to register, log in and connect (2…20000).")
    var users: Int = 20

    @Option(help: "How many of the users send (1…users).")
    var senders: Int = 10

    @Option(help: "Total target rate over all senders in msgs/s; 0 = as fast as the window allows.")
    var rate: Double = 0

    @Option(help: "Seconds of sending (at most 3600).")
    var duration: Double = 10

    @Option(help: "Un-acked frames allowed per sending socket.")
    var window: Int = 64

    @Option(help: "Receivers per sender, used round robin.")
    var fanout: Int = 1

    @Option(help: "Setup requests (and WebSocket connects) in flight.")
    var concurrency: Int = 16

    @Option(name: .customLong("message-bytes"), help: "Pad each message text to at least this many characters (max 4096).")
    var messageBytes: Int = 0

    @Option(help: "Seconds to wait for in-flight acks and deliveries after sending stops.")
    var drain: Double = 5

    @Option(name: .customLong("server-pid"), help: "The server's pid: its CPU time over the sending window is reported (this machine only).")
    var serverPid: Int32?

    @Flag(help: "Print exactly one JSON object on stdout instead of the summary.")
    var json = false

    func validate() throws {
        _ = try LoadgenTarget(url)
        for other in otherURLs { _ = try LoadgenTarget(other) }
        guard (2...20_000).contains(users) else { throw ValidationError("--users must be 2…20000") }
        guard (1...users).contains(senders) else { throw ValidationError("--senders must be 1…users") }
        guard rate.isFinite, (0...1_000_000).contains(rate) else { throw ValidationError("--rate must be 0…1000000") }
        guard duration.isFinite, duration > 0, duration <= 3600 else { throw ValidationError("--duration must be in (0, 3600]") }
        guard (1...4096).contains(window) else { throw ValidationError("--window must be 1…4096") }
        guard (1...min(users - 1, 64)).contains(fanout) else { throw ValidationError("--fanout must be 1…min(users-1, 64)") }
        guard (1...256).contains(concurrency) else { throw ValidationError("--concurrency must be 1…256") }
        guard (0...4096).contains(messageBytes) else { throw ValidationError("--message-bytes must be 0…4096") }
        guard drain.isFinite, (0...60).contains(drain) else { throw ValidationError("--drain must be 0…60") }
    }

    func run() async throws {
        _ = LoadgenClock.nanos()  // fix the clock origin before any send time is taken
        let target = try LoadgenTarget(url)
        let runID = loadgenRandomHex(4)
        let progress = LoadgenProgress()
        let client = LoadgenHTTPClient(baseURL: target.http, concurrency: concurrency)

        let setupStart = ContinuousClock.now
        try await client.waitUntilHealthy(timeout: .seconds(30))
        let setup = LoadgenSetup(client: client, runID: runID, concurrency: concurrency, progress: progress)
        let accounts = try await setup.makeUsers(count: users)
        let receiversOf = { (sender: Int) in (1...fanout).map { (sender + $0) % accounts.count } }
        try await setup.startChats(
            users: accounts,
            pairs: (0..<senders).flatMap { sender in receiversOf(sender).map { (sender, $0) } }
        )

        var logger = Logger(label: "chat-es.loadgen")
        logger.logLevel = .critical  // stdout carries only the summary or the JSON object
        let context = LoadgenRunContext(
            runID: runID,
            webSocketBases: [target.webSocket] + (try otherURLs.map { try LoadgenTarget($0).webSocket }),
            rate: rate,
            senders: senders,
            window: window,
            messageBytes: messageBytes,
            start: LoadgenGate(),
            close: LoadgenGate(),
            connectSlots: LoadgenWindow(permits: concurrency),
            ready: LoadgenLocked(0),
            latencies: LoadgenLatencies(),
            logger: logger
        )
        let sockets = accounts.map { user in
            let sends = user.index < senders
            return LoadgenSocket(
                user: user,
                receivers: sends ? receiversOf(user.index).map { accounts[$0].username } : [],
                senderIndex: sends ? user.index : nil,
                context: context
            )
        }
        let phases = await LoadgenDriver(sockets: sockets, context: context, progress: progress)
            .run(duration: .milliseconds(Int64(duration * 1000)), drain: .milliseconds(Int64(drain * 1000)), setupStart: setupStart,
                 serverPid: serverPid)

        var totals = client.counters.withLock { $0 }
        var unacked = 0
        var connected = 0
        for socket in sockets {
            let (counters, pending, _) = socket.snapshot()
            totals.add(counters)
            unacked += pending
            if counters.connectFailures == 0 { connected += 1 }
        }
        let latencies = context.latencies.merged()
        let report = LoadgenReport(
            url: ([target.http] + otherURLs).joined(separator: " + "), users: users, senders: senders, rate: rate, window: window, fanout: fanout,
            durationSeconds: duration, elapsedSeconds: phases.elapsed, setupSeconds: phases.setup,
            connected: connected, ackedAtStop: phases.ackedAtStop, deliveredAtStop: phases.deliveredAtStop,
            totals: totals, unacked: unacked, ack: latencies.ack, e2e: latencies.e2e,
            serverCPU: phases.serverCPU, ownCPU: phases.ownCPU
        )
        print(json ? report.json() : report.human())
    }
}

/// The server's base URLs, checked to be loopback so the load stays on this machine.
struct LoadgenTarget: Sendable {
    /// `http://host:port[/prefix]`, no trailing slash.
    let http: String
    /// The same with `ws`.
    let webSocket: String

    init(_ text: String) throws {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            scheme == "http", let host = components.host, !host.isEmpty
        else {
            // Loopback only, so TLS would measure nothing but itself.
            throw ValidationError("--url must be an http:// URL with a host")
        }
        let bare = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        guard bare == "localhost" || bare == "::1" || bare.hasPrefix("127.") else {
            throw ValidationError("--url must point at this machine (localhost, 127.x.x.x or [::1])")
        }
        guard components.query == nil, components.fragment == nil else {
            throw ValidationError("--url must not have a query or fragment")
        }
        var base = text
        while base.hasSuffix("/") { base.removeLast() }
        http = base
        webSocket = "ws" + base.dropFirst(scheme.count)
    }
}
