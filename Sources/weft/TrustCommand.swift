import ArgumentParser
import WeftIdentity

/// Operator control over trust on first use.
struct TrustCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trust",
        abstract: "List, pin or forget the identities this site trusts for other site names.",
        discussion: """
            A site trusts the first certificate fingerprint it sees for a site name and refuses any \
            other later. When a peer is reinstalled on purpose, forget its old pin; to avoid trusting \
            on first use at all, pin each peer's fingerprint (from `weft identity` there) in advance \
            and set `crypto.trust: pinned`. One identity speaks for one site name. A running site \
            reads the pins again on SIGHUP (`kill -HUP`); a peer no longer trusted is dropped then.
            """,
        subcommands: [List.self, Pin.self, Forget.self],
        defaultSubcommand: List.self
    )

    static func store(_ options: ConfigOption) throws -> PeerTrustStore {
        PeerTrustStore(directory: try ConfigFile.load(options.config).configuration.stateDir)
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print every pinned site name and fingerprint.")
        @OptionGroup var options: ConfigOption

        func run() throws {
            let pins = try TrustCommand.store(options).load()
            if pins.isEmpty { print("no pinned sites") }
            for (name, fingerprint) in pins.sorted(by: { $0.key < $1.key }) {
                print("\(fingerprint)  \(name)")
            }
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
            let store = try TrustCommand.store(options)
            var pins = try store.load()
            if let other = pins.first(where: { $0.key != siteName && $0.value == parsed })?.key {
                throw ValidationError(
                    "\(parsed) is already pinned for \"\(other)\"; one identity speaks for one site (forget it first)")
            }
            pins[siteName] = parsed
            try store.save(pins)
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
            let store = try TrustCommand.store(options)
            var pins = try store.load()
            guard pins.removeValue(forKey: siteName) != nil else {
                throw ValidationError("no pin for \"\(siteName)\"")
            }
            try store.save(pins)
            print("forgot \(siteName); a running site takes it on SIGHUP")
        }
    }
}
