import ArgumentParser
import WeftIdentity
import WeftSite

struct IdentityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "identity",
        abstract: "Print this site's certificate fingerprint, creating the identity if it is missing.",
        discussion: """
            The identity lives in the configuration's stateDir (default ~/.weft); its certificate is \
            valid for two years, and the site warns from 60 days before the end. `--rotate` makes a \
            new identity endorsed by the current one: after a restart the site announces the \
            endorsement, and peers that pinned the old identity re-pin the new one.
            """
    )

    @OptionGroup var options: ConfigOption

    @Flag(help: "Also print the site id, the expiry and the files that hold the identity.")
    var verbose = false

    @Flag(help: "Replace the identity with a new one that the current one endorses; takes effect on restart.")
    var rotate = false

    func run() throws {
        let loaded = try ConfigFile.load(options.config)
        let store = IdentityStore(directory: loaded.configuration.stateDir)
        if rotate {
            do {
                let (previous, next) = try store.rotate(siteName: loaded.configuration.siteName)
                print(next.fingerprint.description)
                printError(
                    "weft: rotated the identity of \(loaded.configuration.siteName): \(previous.fingerprint) "
                        + "endorses \(next.fingerprint). Restart the site to use it; peers that pinned the old "
                        + "identity re-pin the new one when they see it announced (a peer with the old "
                        + "fingerprint in crypto.pinnedSites needs its config updated).")
            } catch {
                printError("weft: cannot rotate the site identity: \(error)")
                throw ExitCode(1)
            }
            return
        }
        do {
            let (identity, outcome) = try store.loadOrCreate()
            print(identity.fingerprint.description)
            if verbose {
                print("site id:     \(identity.siteID)")
                print("key:         \(store.keyPath)")
                print("certificate: \(store.certificatePath)")
                print("state:       \(outcome == .created ? "created now" : "existing")")
                print("expires:     \(identity.notValidAfter.formatted(.iso8601))")
            }
        } catch {
            printError("weft: site identity: \(error)")
            throw ExitCode(1)
        }
    }
}
