import ArgumentParser

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print weft's version, its tunnel protocol version and the libmosquitto it uses."
    )

    func run() {
        print(WeftVersion.full)
    }
}
