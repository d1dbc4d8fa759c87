import ArgumentParser

/// `weft key`: a mesh key worth having. Short or guessable keys are the mesh's weak point: an
/// eavesdropper on the broker can test guesses against what it records.
struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Print a new random mesh key (32 bytes from the system's CSPRNG, as 64 hex digits).",
        discussion: """
            Put it in crypto.key of every site of the mesh. A key under 16 bytes is accepted (wovenet \
            accepts 8) but warned about.
            """
    )

    func run() {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        print(bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined())
    }
}
