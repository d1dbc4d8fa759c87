import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The file of a Unix socket weft listens on: it never replaces what is not a stale socket,
/// and it gets the mode the operator asked for (0660 by default: the owner and its group).
///
/// NIO's `cleanupExistingSocketFile` removes any socket at the path, including one another
/// program is serving; weft removes a socket only when nothing accepts on it.
public struct UnixSocketFile: Sendable {
    /// Owner and group may connect; others may not.
    public static let defaultMode: mode_t = 0o660

    public let path: String

    public init(path: String) {
        self.path = path
    }

    public struct Problem: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Makes the path free to bind: creates the directory, removes a stale socket, refuses
    /// anything else in the way.
    public func prepare() throws(Problem) {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw Problem(description: "cannot create \(directory): \(error.localizedDescription)")
            }
        }
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw Problem(description: "\(path) exists and is not a socket; weft does not replace it")
        }
        guard !Self.accepts(path) else {
            throw Problem(description: "another program listens on \(path); weft does not replace its socket")
        }
        guard unlink(path) == 0 || errno == ENOENT else {
            throw Problem(description: "cannot remove the stale socket \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Sets the socket file's mode once it is bound.
    public func setMode(_ mode: mode_t) throws(Problem) {
        guard chmod(path, mode) == 0 else {
            throw Problem(description: "cannot chmod \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Whether something accepts connections on the socket at `path`.
    static func accepts(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
    }
}
