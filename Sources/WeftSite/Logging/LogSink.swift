import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where log lines go: standard output or a file opened for appending.
///
/// Whole lines are written with one `write(2)` under a lock, so lines from many threads never
/// interleave, and a file shared with logrotate's `copytruncate` keeps working (O_APPEND).
public final class LogSink: Sendable {
    private let fd: Mutex<Int32>
    private let ownsDescriptor: Bool

    /// Standard output.
    public static let standardOutput = LogSink(fd: STDOUT_FILENO, owns: false)
    /// Standard error.
    public static let standardError = LogSink(fd: STDERR_FILENO, owns: false)

    private init(fd: Int32, owns: Bool) {
        self.fd = Mutex(fd)
        self.ownsDescriptor = owns
    }

    /// Opens `path` for appending, creating it 0640 (and its directory) when missing.
    public convenience init(appendingTo path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else {
            throw LogSinkError(path: path, reason: String(cString: strerror(errno)))
        }
        self.init(fd: descriptor, owns: true)
    }

    /// Writes one line; a newline is added.
    public func write(line: String) {
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        fd.withLock { descriptor in
            var offset = 0
            while offset < bytes.count {
                let written = bytes.withUnsafeBytes { raw in
                    Glibc.write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                }
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }

    deinit {
        if ownsDescriptor { close(fd.withLock { $0 }) }
    }
}

/// The log file could not be opened.
public struct LogSinkError: Error, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "cannot open log file \(path): \(reason)" }
}
