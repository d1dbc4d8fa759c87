import ArgumentParser
import WeftIdentity
import WeftWire

/// Operator control over trust on first use.
struct TrustCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trust",
        abstract: "List, pin, forget or revoke the identities this site trusts for other site names.",
        discussion: """
            A site trusts the first certificate fingerprint it sees for a site name and refuses any \
            other later. When a peer is reinstalled on purpose, forget its old pin; to avoid trusting \
            on first use at all, pin each peer's fingerprint (from `weft identity` there) in advance \
            and set `crypto.trust: pinned`. One identity speaks for one site name. A revoked identity \
            is refused whatever name it uses, and the revocation is announced: sites that list this \
            one in `crypto.revokers` refuse it too. A running site reads pins and revocations again \
            on SIGHUP (`kill -HUP`); a peer no longer trusted, or revoked, is dropped then.
            """,
        subcommands: [List.self, Pin.self, Forget.self, Revoke.self, Unrevoke.self],
        defaultSubcommand: List.self
    )

    static func store(_ options: ConfigOption) throws -> PeerTrustStore {
        PeerTrustStore(directory: try ConfigFile.load(options.config).configuration.stateDir)
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every pinned site name and fingerprint, then every revoked identity.")
        @OptionGroup var options: ConfigOption

        func run() throws {
            let pins = try TrustCommand.store(options).load()
            if pins.isEmpty { print("no pinned sites") }
            for (name, fingerprint) in pins.sorted(by: { $0.key < $1.key }) {
                print("\(fingerprint)  \(WireText.escaped(name))")
            }
            let revoked = try TrustCommand.revocations(options).load()
            for (fingerprint, revocation) in revoked.sorted(by: { $0.key.description < $1.key.description }) {
                let name = revocation.siteName.map { "  \(WireText.escaped($0))" } ?? ""
                let by = revocation.revokedBy.map { "by \(WireText.escaped($0))" } ?? "here"
                print("\(fingerprint)\(name)  revoked \(by)")
            }
        }
    }

    static func revocations(_ options: ConfigOption) throws -> RevocationStore {
        RevocationStore(directory: try ConfigFile.load(options.config).configuration.stateDir)
    }

    /// A fingerprint as given, or the one pinned for a site name (trust file or config).
    static func resolve(_ target: String, _ options: ConfigOption) throws -> (CertificateFingerprint, String?) {
        if let fingerprint = CertificateFingerprint(target) {
            let configured = try ConfigFile.load(options.config).configuration.crypto.pinnedSites
            let pins = try store(options).load().merging(configured) { _, configured in configured }
            return (fingerprint, pins.first { $0.value == fingerprint }?.key)
        }
        let configured = try ConfigFile.load(options.config).configuration.crypto.pinnedSites
        let stored = try store(options).load()
        guard let fingerprint = configured[target] ?? stored[target] else {
            throw ValidationError(
                "\"\(WireText.escaped(target))\" is neither a fingerprint nor a pinned site name (`weft trust list`)")
        }
        return (fingerprint, target)
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke an identity: refused here under any name, and announced to the mesh.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "A pinned siteName, or a fingerprint (sha256: and 64 hex digits).") var target: String

        func run() throws {
            let (fingerprint, name) = try TrustCommand.resolve(target, options)
            let revoked = try TrustCommand.revocations(options).update { revoked in
                revoked[fingerprint] = Revocation(siteName: name, revokedBy: nil)
            }
            let named = name.map { " (\(WireText.escaped($0)))" } ?? ""
            print(
                "revoked \(fingerprint)\(named); a running site drops it and announces the revocation on SIGHUP")
            let own = revoked.values.filter { $0.revokedBy == nil }.count
            if own > SiteAnnouncement.Limits.revoked {
                printError(
                    "weft: \(own) identities are revoked here; an announcement carries \(SiteAnnouncement.Limits.revoked), "
                        + "so other sites learn only that many (this site refuses them all)")
            }
        }
    }

    struct Unrevoke: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Lift a revocation made here; one learned from a revoker is lifted there.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "A siteName or a fingerprint that was revoked here.") var target: String

        func run() throws {
            var lifted: CertificateFingerprint?
            try TrustCommand.revocations(options).update { revoked in
                let fingerprint =
                    CertificateFingerprint(target)
                    ?? revoked.first { $0.value.siteName == target && $0.value.revokedBy == nil }?.key
                guard let fingerprint, let revocation = revoked[fingerprint] else {
                    throw ValidationError("\"\(WireText.escaped(target))\" is not revoked here")
                }
                if let by = revocation.revokedBy {
                    throw ValidationError(
                        "\(fingerprint) was revoked by \(WireText.escaped(by)); it is lifted when \(WireText.escaped(by)) lifts it"
                    )
                }
                revoked[fingerprint] = nil
                lifted = fingerprint
            }
            print("lifted the revocation of \(lifted.map(\.description) ?? target); a running site takes it on SIGHUP")
        }
    }

    struct Pin: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pin a site name to a fingerprint, replacing any pin.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The peer's siteName.") var siteName: String
        @Argument(help: "Its fingerprint, as `weft identity` prints it there.") var fingerprint: String

        func run() throws {
            guard let parsed = CertificateFingerprint(fingerprint) else {
                throw ValidationError("\"\(fingerprint)\" is not a fingerprint (sha256: and 64 hex digits)")
            }
            try TrustCommand.store(options).update { pins in
                if let other = pins.first(where: { $0.key != siteName && $0.value == parsed })?.key {
                    throw ValidationError(
                        "\(parsed) is already pinned for \"\(other)\"; one identity speaks for one site (forget it first)"
                    )
                }
                pins[siteName] = parsed
            }
            print("pinned \(siteName) to \(parsed); a running site takes it on SIGHUP")
        }
    }

    struct Forget: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Forget a site's pin; its next identity is trusted on first use."
        )
        @OptionGroup var options: ConfigOption
        @Argument(help: "The peer's siteName.") var siteName: String

        func run() throws {
            try TrustCommand.store(options).update { pins in
                guard pins.removeValue(forKey: siteName) != nil else {
                    throw ValidationError("no pin for \"\(siteName)\"")
                }
            }
            print("forgot \(siteName); a running site takes it on SIGHUP")
        }
    }
}
