import Crypto
import Foundation
import X509

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Keeps a site identity in the state directory: created once, reused on every later start.
///
/// The directory is made 0700 and the files 0600. A missing pair is created; a half-present,
/// unreadable or corrupt pair is an error, never silently replaced, because peers have pinned
/// the old fingerprint and a new one would look like an impostor to them.
public struct IdentityStore: Sendable {
    /// The state directory, e.g. `~/.weft`.
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// Where the private key lives.
    public var keyPath: String { directory + "/site.key" }
    /// Where the certificate lives.
    public var certificatePath: String { directory + "/site.crt" }

    /// What `loadOrCreate` did.
    public enum Outcome: Sendable, Equatable {
        case created
        case loaded
    }

    /// Loads the identity, creating it first if neither file exists.
    ///
    /// Two processes racing on one directory are serialised by a lock file, so they end up
    /// with the same identity.
    public func loadOrCreate(now: Date = Date()) throws -> (SiteIdentity, Outcome) {
        try makeDirectory()
        // weft makes the directory 0700 and the key 0600 itself; looser modes were set by
        // someone else, and a key others could read is no secret. Refused, not warned about.
        if let loose = looseFiles().first {
            var info = stat()
            _ = stat(loose, &info)
            throw IdentityError(
                code: .insecure,
                message:
                    "\(loose) has mode 0\(String(info.st_mode & 0o777, radix: 8)): others than its owner can use it; "
                    + "run chmod \(loose == directory ? "700" : "600") \(loose)"
            )
        }
        let lock = try FileLock(path: directory + "/.lock")
        defer { lock.unlock() }

        let fm = FileManager.default
        let hasKey = fm.fileExists(atPath: keyPath)
        let hasCert = fm.fileExists(atPath: certificatePath)
        switch (hasKey, hasCert) {
        case (false, false):
            let identity = try SiteIdentity.generate(now: now)
            try writeSecret(identity.privateKeyPEM, to: keyPath)
            try writeSecret(try identity.certificatePEM, to: certificatePath)
            return (identity, .created)
        case (true, true):
            return (try load(), .loaded)
        case (true, false):
            throw IdentityError(
                code: .incomplete,
                message: "\(certificatePath) is missing while \(keyPath) exists; restore it, or remove "
                    + "\(keyPath) to create a new identity (peers that pinned the old one will refuse it)"
            )
        case (false, true):
            throw IdentityError(
                code: .incomplete,
                message: "\(keyPath) is missing while \(certificatePath) exists; restore it, or remove "
                    + "\(certificatePath) to create a new identity (peers that pinned the old one will refuse it)"
            )
        }
    }

    /// Loads an existing identity; never creates one.
    public func load() throws -> SiteIdentity {
        let keyText = try readText(keyPath)
        let certText = try readText(certificatePath)
        let key: P256.Signing.PrivateKey
        do {
            key = try P256.Signing.PrivateKey(pemRepresentation: keyText)
        } catch {
            throw IdentityError(
                code: .corrupt,
                message: "\(keyPath) does not hold a P-256 private key in PEM form (\(error))"
            )
        }
        let certificate: Certificate
        do {
            certificate = try Certificate(pemEncoded: certText)
        } catch {
            throw IdentityError(
                code: .corrupt,
                message: "\(certificatePath) does not hold a certificate in PEM form (\(error))"
            )
        }
        do {
            return try SiteIdentity(privateKey: key, certificate: certificate)
        } catch let error as IdentityError {
            throw IdentityError(
                code: error.code,
                message: "\(certificatePath) does not belong to the key in \(keyPath)"
            )
        }
    }

    /// The state directory and key, if others than the owner can read, write or enter them.
    public func looseFiles() -> [String] {
        [directory, keyPath].filter { path in
            var info = stat()
            guard stat(path, &info) == 0 else { return false }
            return info.st_mode & 0o077 != 0
        }
    }

    private func makeDirectory() throws(IdentityError) {
        try StateFiles.ensureDirectory(directory)
    }

    private func readText(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw IdentityError(code: .io, message: "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw IdentityError(code: .corrupt, message: "\(path) is not text")
        }
        return text
    }

    private func writeSecret(_ text: String, to path: String) throws(IdentityError) {
        try StateFiles.writeSecret(Array(text.utf8), to: path)
    }
}

/// An advisory `flock` held while the identity is read or created.
struct FileLock {
    private let fd: Int32

    init(path: String) throws {
        fd = open(path, O_RDWR | O_CREAT, 0o600)
        guard fd >= 0 else {
            throw IdentityError(
                code: .io, message: "cannot open lock file \(path): \(String(cString: strerror(errno)))")
        }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else {
                let reason = String(cString: strerror(errno))
                close(fd)
                throw IdentityError(code: .io, message: "cannot lock \(path): \(reason)")
            }
        }
    }

    func unlock() {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
