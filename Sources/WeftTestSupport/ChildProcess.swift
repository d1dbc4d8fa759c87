import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A child process spawned with a clean signal mask and default signal handlers: the one way
/// tests start another program.
///
/// Foundation's `Process` spawns children with the signal mask of the calling thread, and the
/// threads of Swift's concurrency pool block most signals: such a child ignores SIGTERM and its
/// `alarm()` never fires. Tests that stop brokers and tools need children that behave as they
/// would under a shell or systemd. Output goes to files, so nothing ever blocks on a pipe (a
/// chatty child cannot fill one while the test waits for the other), and waiting is `async`, so
/// a test never holds one of the concurrency pool's few threads while a child runs.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    private let lock = NSLock()
    private var status: Int32?

    /// Starts `executable` with `arguments`; stdout and stderr go to the given files (or
    /// /dev/null). `environment` replaces the parent's when given; `directory` is the working
    /// directory.
    public init(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
        directory: String? = nil, stdout: String? = nil, stderr: String? = nil
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        // Nothing else of the test process: a listening socket a child inherited would go on
        // accepting after the test closed it (tests run side by side and spawn all the time).
        if let closeFrom = Self.addCloseFrom { _ = closeFrom(&actions, 3) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        // Glibc's addchdir_np is not in Swift's Glibc module: coreutils' env changes directory.
        let command = directory.map { ["/usr/bin/env", "-C", $0, executable] + arguments } ?? [executable] + arguments
        let argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { environment in
            environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        }
        defer { for pointer in envp ?? [] { free(pointer) } }
        var child: pid_t = 0
        let rc =
            envp.map { envp in posix_spawn(&child, command[0], &actions, &attributes, argv, envp) }
            ?? posix_spawn(&child, command[0], &actions, &attributes, argv, environ)
        guard rc == 0 else {
            throw BrokerError(message: "cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        pid = child
    }

    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which Swift's Glibc
    /// module does not import.
    private static var addCloseFrom: AddCloseFrom? {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: AddCloseFrom.self)
    }

    /// The child's process id (the name `Foundation.Process` uses).
    public var processIdentifier: pid_t { pid }

    /// Whether the child still runs (reaps it once it has exited).
    public var isRunning: Bool {
        lock.withLock {
            if status != nil { return false }
            var raw: Int32 = 0
            let result = waitpid(pid, &raw, WNOHANG)
            if result == pid {
                status = raw
                return false
            }
            return result == 0
        }
    }

    /// The exit code, or nil while it runs or if a signal ended it.
    public var exitCode: Int32? {
        guard !isRunning, let raw = lock.withLock({ status }) else { return nil }
        return raw & 0x7f == 0 ? (raw >> 8) & 0xff : nil
    }

    /// The signal that ended the child, or nil while it runs or if it exited.
    public var terminationSignal: Int32? {
        guard !isRunning, let raw = lock.withLock({ status }) else { return nil }
        return raw & 0x7f == 0 ? nil : raw & 0x7f
    }

    public func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Polls until the child exits or `timeout` passes; true if it exited. Blocks the calling
    /// thread: for `deinit` and synchronous code only; async code awaits `exited(within:)`.
    @discardableResult
    public func waitForExit(timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning {
            if Date() >= deadline { return false }
            usleep(5_000)
        }
        return true
    }

    /// Waits until the child exits or `timeout` passes, without blocking a concurrency thread.
    @discardableResult
    public func exited(within timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while isRunning {
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return true
    }

    /// What a program run to completion left: its exit status (-1 when it was killed for
    /// running past its time; 128 + the signal when a signal ended it) and both outputs.
    public struct Output: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String

        public init(status: Int32, stdout: String, stderr: String) {
            self.status = status
            self.stdout = stdout
            self.stderr = stderr
        }
    }

    /// Runs a program to completion — killed after `timeout` — and returns both outputs, read
    /// from files once it ended (so neither stream can block the child while the other fills).
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, directory: String? = nil,
        timeout: Duration = .seconds(120)
    ) async throws -> Output {
        let capture = NSTemporaryDirectory() + "weft-run-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: capture, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: capture) }
        let child = try ChildProcess(
            executable, arguments, environment: environment, directory: directory, stdout: capture + "/out",
            stderr: capture + "/err")
        var status: Int32 = -1
        if await child.exited(within: timeout) {
            status = child.exitCode ?? 128 + (child.terminationSignal ?? 0)
        } else {
            child.signal(SIGKILL)
            await child.exited(within: .seconds(10))
        }
        func read(_ name: String) -> String {
            String(decoding: FileManager.default.contents(atPath: capture + "/" + name) ?? Data(), as: UTF8.self)
        }
        return Output(status: status, stdout: read("out"), stderr: read("err"))
    }

    deinit {
        if isRunning {
            kill(pid, SIGKILL)
            waitForExit(timeout: 5)
        }
    }
}
