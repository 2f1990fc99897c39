import ArgumentParser

/// The `chat-es` command: the server and the operator/auditor tools over one data directory.
@main
struct ChatES: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-es",
        abstract: "An event-sourced chat server and the tools to audit its log.",
        subcommands: [
            ServeCommand.self, ReplayCommand.self, VerifyCommand.self, RebuildCommand.self,
            StatsCommand.self, MigrateCommand.self, CopyCommand.self, BenchCommand.self, LoadgenCommand.self,
        ]
    )
}
