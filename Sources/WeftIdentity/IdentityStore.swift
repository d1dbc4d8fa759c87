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
    /// The previous identity's endorsement of the current one, after a rotation.
    public var endorsementPath: String { directory + "/site.endorsement" }

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
        try finishRotation()

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

    /// Replaces the identity with a new one, endorsed by the old one for `siteName`
    /// (`weft identity --rotate`). The old key is gone afterwards; the endorsement (the old
    /// certificate and its signature) is kept and announced, so peers that pinned the old
    /// identity re-pin the new one. Returns the old and the new identity.
    public func rotate(siteName: String, now: Date = Date()) throws -> (previous: SiteIdentity, next: SiteIdentity) {
        try makeDirectory()
        let lock = try FileLock(path: directory + "/.lock")
        defer { lock.unlock() }
        try finishRotation()
        let previous = try load()
        let next = try SiteIdentity.generate(now: now)
        let endorsement = try IdentityEndorsement(siteName: siteName, from: previous, to: next)
        // The endorsement first, so a new key never exists without it; then the new pair, whole,
        // beside the old; then the renames. A crash between them is finished at the next load
        // (`finishRotation`), so the key and the certificate never stay mismatched.
        try writeSecret(Self.encode(endorsement), to: endorsementPath)
        try writeSecret(next.privateKeyPEM, to: keyPath + ".new")
        try writeSecret(try next.certificatePEM, to: certificatePath + ".new")
        try finishRotation()
        return (previous, next)
    }

    /// Completes a rotation that stopped part way: a whole new pair is renamed into place (key,
    /// then certificate); a new key whose certificate was never written is dropped (the old
    /// identity stays, and the endorsement, which names the new one, endorses nothing).
    private func finishRotation() throws {
        let fm = FileManager.default
        let newKey = keyPath + ".new"
        let newCertificate = certificatePath + ".new"
        if fm.fileExists(atPath: newKey) {
            guard fm.fileExists(atPath: newCertificate) else {
                unlink(newKey)
                return
            }
            try move(newKey, to: keyPath)
        }
        if fm.fileExists(atPath: newCertificate) {
            // Only a certificate that belongs to the key in place is taken.
            guard (try? load(keyAt: keyPath, certificateAt: newCertificate)) != nil else {
                throw IdentityError(
                    code: .mismatch,
                    message: "\(newCertificate) is left from a rotation but does not belong to \(keyPath); "
                        + "remove it if \(certificatePath) is the right one")
            }
            try move(newCertificate, to: certificatePath)
        }
    }

    private func move(_ from: String, to: String) throws(IdentityError) {
        guard rename(from, to) == 0 else {
            throw IdentityError(code: .io, message: "cannot replace \(to): \(String(cString: strerror(errno)))")
        }
    }

    /// The endorsement of the current identity by the one before it, or nil when the identity
    /// was never rotated (or the endorsement is not for it: the files were changed by hand).
    public func loadEndorsement(for identity: SiteIdentity, siteName: String) throws -> IdentityEndorsement? {
        guard FileManager.default.fileExists(atPath: endorsementPath) else { return nil }
        guard let endorsement = Self.decode(try readText(endorsementPath)) else {
            throw IdentityError(code: .corrupt, message: "\(endorsementPath) does not hold an endorsement")
        }
        let valid = endorsement.endorses(
            identity.fingerprint, for: siteName, replacing: endorsement.previousFingerprint)
        return valid ? endorsement : nil
    }

    static func encode(_ endorsement: IdentityEndorsement) -> String {
        "weft identity endorsement v1\n" + Data(endorsement.previousCertificate).base64EncodedString() + "\n"
            + Data(endorsement.signature).base64EncodedString() + "\n"
    }

    static func decode(_ text: String) -> IdentityEndorsement? {
        let lines = text.split(separator: "\n")
        guard lines.count == 3, lines[0] == "weft identity endorsement v1",
            let certificate = Data(base64Encoded: String(lines[1])),
            let signature = Data(base64Encoded: String(lines[2]))
        else { return nil }
        return IdentityEndorsement(previousCertificate: Array(certificate), signature: Array(signature))
    }

    /// Loads an existing identity; never creates one.
    public func load() throws -> SiteIdentity {
        try load(keyAt: keyPath, certificateAt: certificatePath)
    }

    private func load(keyAt keyPath: String, certificateAt certificatePath: String) throws -> SiteIdentity {
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
