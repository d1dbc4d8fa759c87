import Foundation
import Testing
import WeftIdentity

#if canImport(Glibc)
    import Glibc
#endif

/// A fresh directory under /tmp, removed by the caller.
func temporaryDirectory(_ name: String = #function) -> String {
    let path = NSTemporaryDirectory() + "weft-test-\(getpid())-\(UUID().uuidString.prefix(8))"
    // 0700, as weft makes a state directory: some tests use it as one.
    try? FileManager.default.createDirectory(
        atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    return path
}

func mode(_ path: String) -> mode_t {
    var info = stat()
    stat(path, &info)
    return info.st_mode & 0o777
}

@Suite("site identity on disk", .timeLimit(.minutes(10)))
struct IdentityStoreTests {
    @Test("first start creates 0700/0600 files; later starts reuse them")
    func createThenReuse() throws {
        let root = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = IdentityStore(directory: root + "/state")
        let (first, outcome) = try store.loadOrCreate()
        #expect(outcome == .created)
        #expect(mode(root + "/state") == 0o700)
        #expect(mode(store.keyPath) == 0o600)
        #expect(mode(store.certificatePath) == 0o600)
        #expect(store.looseFiles().isEmpty)

        let (second, again) = try store.loadOrCreate()
        #expect(again == .loaded)
        #expect(second.fingerprint == first.fingerprint)
        #expect(second.siteID == first.siteID)
        #expect(second.certificateDER == first.certificateDER)
    }

    @Test("two state directories hold two different identities")
    func separateDirectories() throws {
        let root = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let a = try IdentityStore(directory: root + "/a").loadOrCreate().0
        let b = try IdentityStore(directory: root + "/b").loadOrCreate().0
        #expect(a.fingerprint != b.fingerprint)
        #expect(a.siteID != b.siteID)
    }

    @Test("a corrupt key is an error and is left in place")
    func corruptKey() throws {
        let root = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = IdentityStore(directory: root)
        _ = try store.loadOrCreate()
        try "garbage".write(toFile: store.keyPath, atomically: false, encoding: .utf8)
        #expect {
            _ = try store.loadOrCreate()
        } throws: { error in
            (error as? IdentityError)?.code == .corrupt
        }
        #expect(try String(contentsOfFile: store.keyPath, encoding: .utf8) == "garbage")
    }

    @Test("a corrupt certificate is an error")
    func corruptCertificate() throws {
        let root = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = IdentityStore(directory: root)
        _ = try store.loadOrCreate()
        try "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".write(
            toFile: store.certificatePath,
            atomically: false,
            encoding: .utf8
        )
        #expect(throws: IdentityError.self) { _ = try store.loadOrCreate() }
    }

    @Test("a certificate from another identity is a mismatch")
    func mismatchedPair() throws {
        let root = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let a = IdentityStore(directory: root + "/a")
        let b = IdentityStore(directory: root + "/b")
        _ = try a.loadOrCreate()
        _ = try b.loadOrCreate()
        try FileManager.default.removeItem(atPath: a.certificatePath)
        try FileManager.default.copyItem(atPath: b.certificatePath, toPath: a.certificatePath)
        #expect {
            _ = try a.loadOrCreate()
        } throws: { error in
            (error as? IdentityError)?.code == .mismatch
        }
    }

    @Test("half an identity is an error, never replaced")
    func halfMissing() throws {
        let root = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = IdentityStore(directory: root)
        _ = try store.loadOrCreate()
        try FileManager.default.removeItem(atPath: store.certificatePath)
        #expect {
            _ = try store.loadOrCreate()
        } throws: { error in
            (error as? IdentityError)?.code == .incomplete
        }
        #expect(!FileManager.default.fileExists(atPath: store.certificatePath))
    }

    @Test("an unreadable key is an error (a directory where the key file should be: root included)")
    func unreadable() throws {
        let root = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = IdentityStore(directory: root)
        _ = try store.loadOrCreate()
        // Permissions cannot stop root (CI runs as root); a directory cannot be read as a file
        // by anyone.
        try FileManager.default.removeItem(atPath: store.keyPath)
        try FileManager.default.createDirectory(atPath: store.keyPath, withIntermediateDirectories: false)
        #expect(throws: IdentityError.self) { _ = try store.loadOrCreate() }
        #expect(FileManager.default.fileExists(atPath: store.certificatePath), "the certificate was replaced")
    }

    @Test("a state directory that is a file is an error")
    func stateDirIsFile() throws {
        let root = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try "x".write(toFile: root + "/file", atomically: false, encoding: .utf8)
        #expect(throws: IdentityError.self) { _ = try IdentityStore(directory: root + "/file").loadOrCreate() }
    }

    @Test("a state directory or key others can use is refused, with the chmod that fixes it")
    func loosePermissions() throws {
        let root = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = IdentityStore(directory: root + "/s")
        _ = try store.loadOrCreate()
        chmod(store.keyPath, 0o644)
        #expect(store.looseFiles() == [store.keyPath])
        let key = #expect(throws: IdentityError.self) { _ = try store.loadOrCreate() }
        #expect(
            key?.code == .insecure && key?.message.contains("chmod 600 \(store.keyPath)") == true,
            "\(String(describing: key))")
        chmod(store.keyPath, 0o600)
        chmod(store.directory, 0o750)
        let directory = #expect(throws: IdentityError.self) { _ = try store.loadOrCreate() }
        #expect(directory?.message.contains("mode 0750") == true, "\(String(describing: directory))")
        chmod(store.directory, 0o700)
        #expect(try store.loadOrCreate().1 == .loaded)
    }

    @Test("concurrent first starts agree on one identity")
    func concurrentCreation() async throws {
        let root = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = root + "/shared"
        let fingerprints = try await withThrowingTaskGroup(of: CertificateFingerprint.self) { group in
            for _ in 0..<4 {
                group.addTask { try IdentityStore(directory: directory).loadOrCreate().0.fingerprint }
            }
            return try await group.reduce(into: Set<CertificateFingerprint>()) { $0.insert($1) }
        }
        #expect(fingerprints.count == 1)
    }

    @Test("fingerprints print as sha256:hex and parse back")
    func fingerprintText() throws {
        let identity = try SiteIdentity.generate()
        let text = identity.fingerprint.description
        #expect(text.hasPrefix("sha256:") && text.count == 7 + 64)
        #expect(CertificateFingerprint(text) == identity.fingerprint)
        #expect(CertificateFingerprint(String(text.dropFirst(7)).uppercased()) == identity.fingerprint)
        #expect(CertificateFingerprint("sha256:1234") == nil)
    }
}
