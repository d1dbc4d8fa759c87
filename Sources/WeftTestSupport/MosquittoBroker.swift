import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A real mosquitto broker on a free loopback port, started and stopped by tests and
/// benchmarks. Never a system-wide broker: it has its own config and its own directory.
public final class MosquittoBroker: @unchecked Sendable {
    public static let executable = "/usr/sbin/mosquitto"

    /// Whether tests that need a broker run (always under CI, where a missing one fails).
    public static var isAvailable: Bool { TestEnvironment.runs(needing: executable) }

    public let port: Int
    public let directory: String
    private let lock = NSLock()
    private var process: ChildProcess?

    /// Writes a config (`listener PORT 127.0.0.1`, no persistence, anonymous unless `extraConfig`
    /// says otherwise) and starts the broker.
    public init(extraConfig: String = "", allowAnonymous: Bool = true) throws {
        port = try FreePort.find()
        directory = NSTemporaryDirectory() + "weft-mosquitto-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Started as root (CI), mosquitto drops to its own user: it must still be able to write
        // its log here, or `log` is always empty.
        chmod(directory, 0o777)
        let config = """
            listener \(port) 127.0.0.1
            allow_anonymous \(allowAnonymous)
            persistence false
            log_dest file \(directory)/mosquitto.log
            log_type error
            log_type warning
            log_type notice
            max_keepalive 3600
            \(extraConfig)

            """
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        try start()
    }

    public var configPath: String { directory + "/mosquitto.conf" }
    public var url: String { "mqtt://127.0.0.1:\(port)" }

    /// Starts the broker and waits until it accepts connections.
    public func start() throws {
        let process = try ChildProcess(Self.executable, ["-c", configPath])
        lock.withLock { self.process = process }
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if FreePort.accepts(port) { return }
            if !process.isRunning { break }
            usleep(20_000)
        }
        throw BrokerError(message: "mosquitto did not start on port \(port): \(log)")
    }

    /// Stops the broker (SIGTERM, as a service manager would) and waits for it to exit.
    public func stop() {
        let running = lock.withLock { () -> ChildProcess? in
            defer { self.process = nil }
            return self.process
        }
        guard let running else { return }
        running.signal(SIGTERM)
        if !running.waitForExit(timeout: 5) {
            running.signal(SIGKILL)
            running.waitForExit(timeout: 5)
        }
    }

    /// The broker's process id while it runs.
    public var processIdentifier: Int32? {
        lock.withLock { process?.isRunning == true ? process?.pid : nil }
    }

    public var log: String {
        (try? String(contentsOfFile: directory + "/mosquitto.log", encoding: .utf8)) ?? ""
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

public struct BrokerError: Error, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
