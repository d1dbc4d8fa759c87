import Foundation

/// A revoked identity: refused on the message channel and on links, whatever name it uses.
public struct Revocation: Sendable, Hashable {
    /// The site name the identity spoke for, when known (for people; the fingerprint decides).
    public var siteName: String?
    /// Who revoked it: nil for this site's operator, else the site (named in
    /// `crypto.revokers`) whose announcement carries it.
    public var revokedBy: String?

    public init(siteName: String? = nil, revokedBy: String? = nil) {
        self.siteName = siteName
        self.revokedBy = revokedBy
    }
}

/// The identities this site refuses, kept in `stateDir/revoked-peers.json`: those its operator
/// revoked (`weft trust revoke`) and those learned from a site it takes revocations from, so a
/// restart, or a revoker being offline, never lets a revoked identity back in.
///
/// JSON, written whole through a temporary file and a rename, like the trust file.
public struct RevocationStore: Sendable {
    public let path: String

    public init(directory: String) {
        self.path = directory + "/revoked-peers.json"
    }

    /// The revocations on disk; an absent file is none, a corrupt one an error.
    public func load() throws(IdentityError) -> [CertificateFingerprint: Revocation] {
        guard FileManager.default.fileExists(atPath: path) else { return [:] }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw IdentityError(code: .io, message: "cannot read \(path)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: [String: String]] else {
            throw IdentityError(
                code: .corrupt, message: "\(path) is not a JSON object of fingerprints to {siteName, revokedBy}")
        }
        var revoked: [CertificateFingerprint: Revocation] = [:]
        for (text, entry) in object {
            guard let fingerprint = CertificateFingerprint(text) else {
                throw IdentityError(code: .corrupt, message: "\(path): \"\(text)\" is not a fingerprint")
            }
            revoked[fingerprint] = Revocation(siteName: entry["siteName"], revokedBy: entry["revokedBy"])
        }
        return revoked
    }

    /// Reads, changes and writes the file under a lock, so the running site and `weft trust
    /// revoke` never write over each other's change. Returns what was written.
    @discardableResult
    public func update(_ change: (inout [CertificateFingerprint: Revocation]) throws -> Void) throws
        -> [CertificateFingerprint: Revocation]
    {
        try StateFiles.update(path, load: load, change: change, save: save)
    }

    /// Writes all revocations (0600).
    public func save(_ revoked: [CertificateFingerprint: Revocation]) throws(IdentityError) {
        try StateFiles.ensureDirectory((path as NSString).deletingLastPathComponent)
        var object: [String: [String: String]] = [:]
        for (fingerprint, revocation) in revoked {
            var entry: [String: String] = [:]
            entry["siteName"] = revocation.siteName
            entry["revokedBy"] = revocation.revokedBy
            object[fingerprint.description] = entry
        }
        guard
            let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        else {
            throw IdentityError(code: .io, message: "cannot encode \(path)")
        }
        try StateFiles.writeSecret(Array(data), to: path)
    }
}
