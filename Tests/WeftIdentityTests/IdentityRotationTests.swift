import Foundation
import Testing
import WeftIdentity

#if canImport(Glibc)
    import Glibc
#endif

@Suite("identity lifetime and rotation on disk", .timeLimit(.minutes(10)))
struct IdentityRotationTests {
    @Test("a new identity is valid for two years, not a century")
    func lifetime() throws {
        let now = Date()
        let identity = try SiteIdentity.generate(now: now)
        #expect(abs(identity.notValidAfter.timeIntervalSince(now) - SiteIdentity.lifetime) < 5)
    }

    @Test("rotate: a new key and certificate, endorsed by the old for this site name only; the old key is gone")
    func rotate() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = IdentityStore(directory: directory)
        let (old, _) = try store.loadOrCreate()
        let oldKey = try String(contentsOfFile: store.keyPath, encoding: .utf8)
        #expect(try store.loadEndorsement(for: old, siteName: "berlin") == nil, "never rotated")

        let (previous, next) = try store.rotate(siteName: "berlin")
        #expect(previous.fingerprint == old.fingerprint && next.fingerprint != old.fingerprint)
        let (loaded, outcome) = try store.loadOrCreate()
        #expect(outcome == .loaded && loaded.fingerprint == next.fingerprint)
        #expect(try String(contentsOfFile: store.keyPath, encoding: .utf8) != oldKey)
        #expect(mode(store.keyPath) == 0o600 && mode(store.endorsementPath) == 0o600)
        #expect(!FileManager.default.fileExists(atPath: store.keyPath + ".new"))

        let endorsement = try #require(try store.loadEndorsement(for: loaded, siteName: "berlin"))
        #expect(endorsement.previousFingerprint == old.fingerprint)
        #expect(endorsement.endorses(next.fingerprint, for: "berlin", replacing: old.fingerprint))
        // Bound to the name, the new identity and the old pin.
        #expect(!endorsement.endorses(next.fingerprint, for: "paris", replacing: old.fingerprint))
        let stranger = try SiteIdentity.generate()
        #expect(!endorsement.endorses(stranger.fingerprint, for: "berlin", replacing: old.fingerprint))
        #expect(!endorsement.endorses(next.fingerprint, for: "berlin", replacing: stranger.fingerprint))
        var forged = endorsement
        forged.signature[10] ^= 1
        #expect(!forged.endorses(next.fingerprint, for: "berlin", replacing: old.fingerprint))
        // Under another site name the file endorses nothing, so nothing is announced.
        #expect(try store.loadEndorsement(for: loaded, siteName: "paris") == nil)
    }

    @Test("a rotation cut short is finished at the next load: never a key without its certificate")
    func interruptedRotation() throws {
        for stage in ["pair written", "key renamed", "key written only"] {
            let directory = temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let store = IdentityStore(directory: directory)
            let (old, _) = try store.loadOrCreate()
            let next = try SiteIdentity.generate()
            // As `rotate` leaves them: whole files, 0600.
            let secret: [FileAttributeKey: Any] = [.posixPermissions: 0o600]
            FileManager.default.createFile(
                atPath: store.keyPath + ".new", contents: Data(next.privateKeyPEM.utf8), attributes: secret)
            if stage != "key written only" {
                FileManager.default.createFile(
                    atPath: store.certificatePath + ".new", contents: Data(try next.certificatePEM.utf8),
                    attributes: secret)
            }
            if stage == "key renamed" { #expect(rename(store.keyPath + ".new", store.keyPath) == 0) }
            let (loaded, _) = try store.loadOrCreate()
            let expected = stage == "key written only" ? old.fingerprint : next.fingerprint
            #expect(loaded.fingerprint == expected, "\(stage)")
            for leftover in [store.keyPath + ".new", store.certificatePath + ".new"] {
                #expect(!FileManager.default.fileExists(atPath: leftover), "\(stage): \(leftover)")
            }
        }
    }

    @Test("rotating without an identity is an error, and creates nothing")
    func rotateNothing() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = IdentityStore(directory: directory)
        #expect(throws: (any Error).self) { try store.rotate(siteName: "berlin") }
        #expect(!FileManager.default.fileExists(atPath: store.keyPath))
    }
}
