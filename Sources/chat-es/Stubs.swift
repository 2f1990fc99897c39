import ArgumentParser
struct ServeCommand: AsyncParsableCommand {}
struct ReplayCommand: AsyncParsableCommand {}
struct VerifyCommand: AsyncParsableCommand {}
struct RebuildCommand: AsyncParsableCommand {}
struct StatsCommand: AsyncParsableCommand {}
struct BenchCommand: AsyncParsableCommand {}
