import ArgumentParser
import Foundation
import Projections

/// `chat-es bench crypto`: what sealing personal fields costs per message, by step, on one
/// thread: the receiver's name key (HMAC-SHA256), the sender's key from the key store, the
/// text sealed (AES-256-GCM) and opened again.
struct BenchCryptoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crypto", abstract: "Benchmark the per-message cost of sealing personal fields.")

    @Option(help: ArgumentHelp("Operations per step.", valueName: "N"))
    var count = 200_000

    @Option(help: ArgumentHelp("Bytes of message text.", valueName: "B"))
    var bytes = 60

    func run() throws {
        try withToolExitCodes {
            let dir = NSTemporaryDirectory() + "chat-es-bench-crypto-" + UUID().uuidString
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let master = try MasterKey(material: Array(SecretMaterial.randomHex().utf8), source: "bench")
            let keys = try KeyStore.open(dataDirectory: dir, master: master)
            _ = try keys.createKeys(for: Array(1...1000))
            let text = Array(String(repeating: "lorem ipsum ", count: bytes / 12 + 1).utf8.prefix(bytes))
            let key = keys.key(for: 7)!
            let box = try SealedBox.seal(text, field: .messageText, owner: 7, key: key)
            print("bench crypto: \(groupedCount(count)) operations per step, \(bytes)-byte text")
            try step("name key (HMAC-SHA256)") { i in _ = keys.nameIndex.nameKey(for: "user\(i & 1023)") }
            try step("sender key from the key store") { i in _ = keys.key(for: UInt32(1 + i % 1000)) }
            try step("seal (AES-256-GCM)") { _ in _ = try SealedBox.seal(text, field: .messageText, owner: 7, key: key) }
            try step("open (AES-256-GCM)") { _ in _ = try SealedBox.open(box, field: .messageText, owner: 7, key: key) }
        }
    }

    private func step(_ name: String, _ body: (Int) throws -> Void) throws {
        let start = BenchClock.nanos()
        for i in 0..<count { try body(i) }
        let ns = Double(BenchClock.nanos() - start) / Double(count)
        print("  \(name.padding(toLength: 32, withPad: " ", startingAt: 0)) \(String(format: "%8.0f", ns)) ns")
    }
}
