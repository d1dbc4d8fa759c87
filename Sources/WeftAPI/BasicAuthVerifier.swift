import Crypto
import Foundation
import WeftSite

/// Checks HTTP Basic credentials against `restfulApi.auth.basicAuth`.
///
/// Passwords are compared as SHA-256 digests in constant time, so response timing tells an
/// attacker nothing about how much of a guess was right.
public struct BasicAuthVerifier: Sendable {
    private let users: [String: SHA256Digest]

    public init(users: [RestfulAPISettings.BasicAuthUser]) {
        var table: [String: SHA256Digest] = [:]
        for user in users { table[user.user] = SHA256.hash(data: Array(user.password.utf8)) }
        self.users = table
    }

    /// Whether any credentials are configured; without them the API is open.
    public var isEnabled: Bool { !users.isEmpty }

    /// The user name when the `Authorization` header value holds valid credentials.
    public func authenticate(authorizationHeader: String?) -> String? {
        guard let header = authorizationHeader else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic",
            let decoded = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)),
            let text = String(data: decoded, encoding: .utf8),
            let colon = text.firstIndex(of: ":")
        else { return nil }
        let user = String(text[..<colon])
        return verify(user: user, password: String(text[text.index(after: colon)...])) ? user : nil
    }

    /// Whether `password` is `user`'s (`POST /login`). False when no users are configured.
    public func verify(user: String, password: String) -> Bool {
        let offered = SHA256.hash(data: Array(password.utf8))
        guard let expected = users[user] else {
            // Same work for unknown users as for known ones.
            _ = Self.constantTimeEqual(offered, offered)
            return false
        }
        return Self.constantTimeEqual(offered, expected)
    }

    /// The user name a `Basic` header claims (not verified): for the access log.
    static func userName(authorizationHeader: String?) -> String? {
        guard let header = authorizationHeader else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic",
            let decoded = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)),
            let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
        else { return nil }
        return String(text[..<colon])
    }

    static func constantTimeEqual(_ a: SHA256Digest, _ b: SHA256Digest) -> Bool {
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}
