import ArgumentParser
import WeftIdentity
import WeftSite

struct IdentityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "identity",
        abstract: "Print this site's certificate fingerprint, creating the identity if it is missing.",
        discussion: "The identity lives in the configuration's stateDir (default ~/.weft)."
    )

    @OptionGroup var options: ConfigOption

    @Flag(help: "Also print the site id and the files that hold the identity.")
    var verbose = false

    func run() throws {
        let loaded = try ConfigFile.load(options.config)
        let store = IdentityStore(directory: loaded.configuration.stateDir)
        do {
            let (identity, outcome) = try store.loadOrCreate()
            print(identity.fingerprint.description)
            if verbose {
                print("site id:     \(identity.siteID)")
                print("key:         \(store.keyPath)")
                print("certificate: \(store.certificatePath)")
                print("state:       \(outcome == .created ? "created now" : "existing")")
            }
        } catch {
            printError("weft: site identity: \(error)")
            throw ExitCode(1)
        }
    }
}
