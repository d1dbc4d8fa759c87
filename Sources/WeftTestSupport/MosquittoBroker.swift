import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A real mosquitto broker on a free loopback port, started and stopped by tests and
/// benchmarks. Never a system-wide broker: it has its own config and its own directory.
public final class MosquittoBroker: @unchecked Sendable {
    public static let executable = "/usr/sbin/mosquitto"

    /// Whether mosquitto is installed (`apt-get install mosquitto`).
    public static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: executable) }

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

/// Loopback ports for test servers.
public enum FreePort {
    /// A port the kernel just handed out for 127.0.0.1 (free now; a test binds it right after).
    public static func find() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BrokerError(message: "socket: \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw BrokerError(message: "bind: \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port`.
    public static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}
