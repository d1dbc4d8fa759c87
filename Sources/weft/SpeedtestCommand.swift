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
            the far end received, over the time until its answer came back. With --download the \
            peer sends and this site checks every byte (the peer must allow it: \
            speedtest.allowDownload: true); with both flags the two directions run at the same \
            time and each is reported. Exits 1 if a byte arrived wrong or a test failed.
            """
    )

    @OptionGroup var options: APIOptions

    @Option(help: ArgumentHelp("The peer site to measure.", valueName: "name"))
    var site: String

    @Option(help: "How long to send, in seconds (1–60).")
    var seconds: Int = 5

    @Flag(help: "Send to the peer (the default when --download is not given).")
    var upload = false

    @Flag(help: "Have the peer send to this site (it needs speedtest.allowDownload: true).")
    var download = false

    typealias Line = APIModels.SpeedtestLine

    func validate() throws {
        guard (1...60).contains(seconds) else { throw ValidationError("--seconds must be from 1 to 60") }
    }

    /// What the API is asked for.
    var direction: String {
        switch (upload, download) {
        case (true, true): "both"
        case (false, true): "download"
        default: "upload"
        }
    }

    func run() async throws {
        let client = try options.client()
        let both = direction == "both"
        // One live line only makes sense for one direction; two print a line a second each.
        let live = isatty(STDOUT_FILENO) != 0 && !both
        let what = both ? "both ways with" : direction == "download" ? "from" : "to"
        print("weft speedtest: \(what) \(site) for \(seconds) s")
        var pending = Data()
        var errorBody = Data()
        var results: [String: Line] = [:]
        var failures: [String] = []
        var lastPrinted: [String: Int] = [:]
        let path =
            "/api/v1/speedtest?site=\(site.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? site)&seconds=\(seconds)&direction=\(direction)"
        let status: Int
        do {
            status = try await client.request("GET", path) { bytes in
                pending.append(contentsOf: bytes.readableBytesView)
                errorBody.append(contentsOf: bytes.readableBytesView.prefix(max(0, 4096 - errorBody.count)))
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let text = pending[pending.startIndex..<newline]
                    pending.removeSubrange(pending.startIndex...newline)
                    guard let line = try? JSONDecoder().decode(Line.self, from: Data(text)) else { continue }
                    // A site older than downloads leaves the direction out (and runs an upload).
                    let way = line.direction ?? "upload"
                    if line.direction == nil && direction != "upload" {
                        failures.append("the site's weft is older than download speed tests; only uploads work")
                        continue
                    }
                    switch line.type {
                    case "progress":
                        let elapsed = line.seconds ?? 0
                        let text =
                            String(format: "%6.2f s  ", elapsed)
                            + (both ? way.padding(toLength: 9, withPad: " ", startingAt: 0) : "")
                            + Units.bytes(Double(line.bytes ?? 0)).padding(toLength: 9, withPad: " ", startingAt: 0)
                            + (way == "download" ? " received  " : " sent  ")
                            + Units.bits(perSecond: line.bitsPerSecond ?? 0)
                        if live {
                            FileHandle.standardOutput.write(Data(("\r" + text + "    ").utf8))
                        } else if Int(elapsed) > lastPrinted[way, default: -1] {
                            lastPrinted[way] = Int(elapsed)
                            print(text)
                        }
                    case "result": results[way] = line
                    default: failures.append("\(both ? way + ": " : "")\(line.message ?? "the test failed")")
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
        var allVerified = true
        for way in ["upload", "download"] {
            guard let result = results[way] else { continue }
            let verified = result.verified == true
            allVerified = allVerified && verified
            let bytes = Double(result.bytes ?? 0)
            let checked =
                way == "download"
                ? "every byte checked here: \(verified ? "all correct" : "MISMATCH after \(result.verifiedBytes ?? 0) bytes")"
                : "far end checked every byte: \(verified ? "all correct" : "MISMATCH after \(result.verifiedBytes ?? 0) bytes")"
            print(
                "result\(both ? " (\(way))" : ""): \(Units.bits(perSecond: result.bitsPerSecond ?? 0)) "
                    + "\(way == "download" ? "from" : "to") \(site): \(Units.bytes(bytes)) in "
                    + String(format: "%.2f s", result.seconds ?? 0) + "; " + checked)
        }
        for failure in failures { printError("weft speedtest: \(failure)") }
        let expected = direction == "both" ? 2 : 1
        if failures.isEmpty && results.count < expected {
            printError(
                "weft speedtest: the API ended the stream without a result\(results.isEmpty ? "" : " for every direction")"
            )
        }
        if !failures.isEmpty || results.count < expected || !allVerified { throw ExitCode(1) }
    }
}
