import ArgumentParser
import Foundation
import WeftAPI

#if canImport(Glibc)
    import Glibc
#endif

struct SpeedtestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "speedtest",
        abstract: "Measure the tunnel to a site: generated data sent for a while, checked at the far end.",
        discussion: """
            The running site (reached through its REST API) sends a known byte pattern through the \
            tunnel to the peer's built-in speed-test sink, which checks every byte. The rate is what \
            the far end received, over the time until its answer came back. Exits 1 if a byte \
            arrived wrong or the test failed.
            """
    )

    @OptionGroup var options: APIOptions

    @Option(help: ArgumentHelp("The peer site to measure.", valueName: "name"))
    var site: String

    @Option(help: "How long to send, in seconds (1–60).")
    var seconds: Int = 5

    typealias Line = APIModels.SpeedtestLine

    func validate() throws {
        guard (1...60).contains(seconds) else { throw ValidationError("--seconds must be from 1 to 60") }
    }

    func run() async throws {
        let client = try options.client()
        let live = isatty(STDOUT_FILENO) != 0
        print("weft speedtest: to \(site) for \(seconds) s")
        var pending = Data()
        var errorBody = Data()
        var result: Line?
        var failure: String?
        var lastPrinted = -1
        let path =
            "/api/v1/speedtest?site=\(site.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? site)&seconds=\(seconds)"
        let status: Int
        do {
            status = try await client.request("GET", path) { bytes in
                pending.append(contentsOf: bytes.readableBytesView)
                errorBody.append(contentsOf: bytes.readableBytesView.prefix(max(0, 4096 - errorBody.count)))
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let text = pending[pending.startIndex..<newline]
                    pending.removeSubrange(pending.startIndex...newline)
                    guard let line = try? JSONDecoder().decode(Line.self, from: Data(text)) else { continue }
                    switch line.type {
                    case "progress":
                        let elapsed = line.seconds ?? 0
                        let text =
                            String(format: "%6.2f s  ", elapsed)
                            + Units.bytes(Double(line.bytes ?? 0)).padding(toLength: 9, withPad: " ", startingAt: 0)
                            + " sent  " + Units.bits(perSecond: line.bitsPerSecond ?? 0)
                        if live {
                            FileHandle.standardOutput.write(Data(("\r" + text + "    ").utf8))
                        } else if Int(elapsed) > lastPrinted {
                            lastPrinted = Int(elapsed)
                            print(text)
                        }
                    case "result": result = line
                    default: failure = line.message ?? "the test failed"
                    }
                }
            }
        } catch let error as APIClient.Failure {
            printError("weft speedtest: \(error)")
            throw ExitCode(1)
        }
        if live { print("") }
        guard status == 200 else {
            printError("weft speedtest: \(APIClient.describe(status: status, body: errorBody, path: path))")
            throw ExitCode(1)
        }
        guard let result else {
            printError("weft speedtest: \(failure ?? "the API ended the stream without a result")")
            throw ExitCode(1)
        }
        let bytes = Double(result.bytes ?? 0)
        let verified = result.verified == true
        print(
            "result: \(Units.bits(perSecond: result.bitsPerSecond ?? 0)) to \(site): \(Units.bytes(bytes)) in "
                + String(format: "%.2f s", result.seconds ?? 0)
                + "; far end checked every byte: \(verified ? "all correct" : "MISMATCH after \(result.verifiedBytes ?? 0) bytes")"
        )
        if !verified { throw ExitCode(1) }
    }
}
