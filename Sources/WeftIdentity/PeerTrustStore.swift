import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The fingerprints this site has pinned for peer site names (trust on first use), kept in
/// `stateDir/trusted-peers.json` so a restart does not reopen the door to an impostor.
///
/// Names come from the network, so the file is JSON (no injection through odd names) and
/// is rewritten whole through a temporary file and a rename.
public struct PeerTrustStore: Sendable {
    public let path: String

    public init(directory: String) {
        self.path = directory + "/trusted-peers.json"
    }

    /// The pins on disk; an absent file is an empty store, a corrupt one an error.
    public func load() throws(IdentityError) -> [String: CertificateFingerprint] {
        guard FileManager.default.fileExists(atPath: path) else { return [:] }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw IdentityError(code: .io, message: "cannot read \(path)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: String] else {
            throw IdentityError(code: .corrupt, message: "\(path) is not a JSON object of site names to fingerprints")
        }
        var pins: [String: CertificateFingerprint] = [:]
        for (name, text) in object {
            guard let fingerprint = CertificateFingerprint(text) else {
                throw IdentityError(code: .corrupt, message: "\(path): \"\(name)\" has no valid fingerprint")
            }
            pins[name] = fingerprint
        }
        return pins
    }

    /// Reads, changes and writes the file under a lock, so the running site and `weft trust
    /// pin` or `forget` never write over each other's change.
    public func update(_ change: (inout [String: CertificateFingerprint]) throws -> Void) throws {
        _ = try StateFiles.update(path, load: load, change: change, save: save)
    }

    /// Writes all pins (0600).
    public func save(_ pins: [String: CertificateFingerprint]) throws(IdentityError) {
        try StateFiles.ensureDirectory((path as NSString).deletingLastPathComponent)
        try StateFiles.writeSecret(StateFiles.jsonObject(pins.mapValues(\.description)), to: path)
    }
}
