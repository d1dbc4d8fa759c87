import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// File handling shared by everything kept in the state directory: a 0700 directory, and
/// 0600 files written whole through a temporary file, `fsync` and `rename`, so a crash never
/// leaves half a file and nobody else can read a key.
enum StateFiles {
    /// Creates `directory` (0700) if it is missing; refuses a non-directory in its place.
    static func ensureDirectory(_ directory: String) throws(IdentityError) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw IdentityError(code: .io, message: "state directory \(directory) exists and is not a directory")
            }
            return
        }
        do {
            try FileManager.default.createDirectory(
                atPath: directory,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
        } catch {
            throw IdentityError(
                code: .io,
                message: "cannot create state directory \(directory): \(error.localizedDescription)"
            )
        }
        chmod(directory, 0o700)
    }

    /// Reads, changes and writes the state file at `path` under `path.lock`, so two processes
    /// (the running site and `weft trust`) never write over each other's change.
    static func update<Value>(
        _ path: String, load: () throws -> Value, change: (inout Value) throws -> Void,
        save: (Value) throws -> Void
    ) throws -> Value {
        try ensureDirectory((path as NSString).deletingLastPathComponent)
        let lock = try FileLock(path: path + ".lock")
        defer { lock.unlock() }
        var value = try load()
        try change(&value)
        try save(value)
        return value
    }

    /// A JSON object of strings, keys in byte order, one entry per line. Written here, not
    /// with `JSONSerialization`'s sorted keys, whose locale-aware comparisons made saving a
    /// 200-site trust file the largest cost of forming a mesh.
    static func jsonObject(_ entries: [String: String]) -> [UInt8] {
        var out: [UInt8] = Array("{".utf8)
        let keys = entries.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        for (index, key) in keys.enumerated() {
            out += Array((index == 0 ? "\n  " : ",\n  ").utf8)
            appendJSONString(key, to: &out)
            out += Array(" : ".utf8)
            appendJSONString(entries[key]!, to: &out)
        }
        out += Array((keys.isEmpty ? "}" : "\n}").utf8)
        return out
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped.
    static func appendJSONString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                out += [UInt8(ascii: "\\"), byte]
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default:
                out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Replaces `path` with `bytes`, 0600.
    static func writeSecret(_ bytes: [UInt8], to path: String) throws(IdentityError) {
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else {
            throw IdentityError(code: .io, message: "cannot create \(temporary): \(String(cString: strerror(errno)))")
        }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == bytes.count, synced == 0, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw IdentityError(code: .io, message: "cannot write \(path): \(reason)")
        }
    }
}
