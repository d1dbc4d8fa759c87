import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// coturn as a plain STUN server (no TURN, no TLS) on a UDP port of 127.0.0.1, with its own
/// directory: for the tests of public address detection and hole punching.
public final class StunServer: @unchecked Sendable {
    public static let executable = "/usr/bin/turnserver"

    /// Whether tests that need coturn run (always under CI, where a missing one fails).
    public static var isAvailable: Bool { TestEnvironment.runs(needing: executable) }

    /// turnserver's arguments for a STUN-only server at 127.0.0.1:`port`, its files in `directory`.
    public static func arguments(port: Int, directory: String) -> [String] {
        [
            "-n", "--listening-ip=127.0.0.1", "--listening-port=\(port)", "--stun-only", "--no-cli", "--no-tls",
            "--no-dtls", "--log-file=stdout", "--simple-log", "--db=\(directory)/turndb",
            "--pidfile=\(directory)/turn.pid",
        ]
    }

    public let port: Int
    public let directory: String
    private let process: ChildProcess

    /// Starts coturn on a free port; it needs a moment to bind (STUN's retransmits cover it).
    public init() throws {
        port = try FreePort.find()
        directory = NSTemporaryDirectory() + "weft-stun-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        process = try ChildProcess(
            Self.executable, Self.arguments(port: port, directory: directory),
            stdout: directory + "/turn.log", stderr: directory + "/turn.err")
    }

    /// What coturn logged so far.
    public var log: String { (try? String(contentsOfFile: directory + "/turn.log", encoding: .utf8)) ?? "" }

    deinit {
        process.signal(SIGKILL)
        _ = process.waitForExit(timeout: 2)
        try? FileManager.default.removeItem(atPath: directory)
    }
}
