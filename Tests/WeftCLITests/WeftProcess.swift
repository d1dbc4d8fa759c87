import Foundation
import Testing
import WeftTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Runs the built `weft` binary as a child process, as a user would.
struct WeftProcess {
    /// The `weft` executable next to this test bundle.
    static let executable: String = {
        let testBinary =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = (testBinary as NSString).deletingLastPathComponent
        // Test bundles may sit inside a `*.xctest` directory on some platforms.
        for _ in 0..<3 {
            let candidate = directory + "/weft"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = (directory as NSString).deletingLastPathComponent
        }
        return directory + "/weft"
    }()

    /// The repository root, found from this source file.
    static let repositoryRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    struct Result {
        var status: Int32
        var output: String
        var error: String
    }

    /// The environment a child gets: this process's, without `WEFT_CONFIG`, with `extra` on top.
    private static func environment(_ extra: [String: String]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "WEFT_CONFIG")
        env.merge(extra) { _, new in new }
        return env
    }

    /// Runs to completion (at most `timeout`, then killed and reported as status -1) and
    /// captures both streams. Output goes through files, so a chatty child never blocks.
    static func run(
        _ arguments: [String],
        environment: [String: String] = [:],
        directory: String? = nil,
        timeout: Duration = .seconds(120)
    ) async throws -> Result {
        let output = try await ChildProcess.run(
            executable, arguments, environment: Self.environment(environment), directory: directory, timeout: timeout)
        return Result(status: output.status, output: output.stdout, error: output.stderr)
    }

    /// Starts a long-running command; its output goes to `logFile` (the config decides).
    static func start(_ arguments: [String], environment: [String: String] = [:]) throws -> ChildProcess {
        try ChildProcess(executable, arguments, environment: Self.environment(environment))
    }

    /// Polls until `condition` holds or `timeout` passes.
    static func waitFor(_ timeout: Duration, _ condition: () async -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return await condition()
    }
}

/// A temporary directory for one test, removed at the end.
struct Scratch: ~Copyable {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "weft-cli-\(getpid())-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Writes a file inside the directory and returns its path.
    func write(_ name: String, _ text: String) throws -> String {
        let file = path + "/" + name
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    func read(_ name: String) -> String {
        (try? String(contentsOfFile: path + "/" + name, encoding: .utf8)) ?? ""
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}
