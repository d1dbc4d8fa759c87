// libFuzzer target: datagrams at a listening QUIC socket (`QUICEndpoint` on an embedded
// channel, with a real site certificate): connection-ID routing, ngtcp2's header and packet
// parsing, connections started by Initials, and their teardown.
//
// Input layout: datagrams, each a 2-byte big-endian length and that many bytes (the last one
// takes what is left); the top bit of the length picks the second of two source addresses.
// Seeds (Corpus/FuzzQUICDatagrams) hold a real client's first flight.
//
// Checked, besides no crash:
// - before any address is validated, the socket sends at most 3 bytes for each byte it
//   received (QUIC's anti-amplification limit) to each source;
// - once the loop's clock has passed every handshake timeout, no connection and no route
//   is left: nothing a stranger sends keeps state alive.

import NIOCore
import NIOEmbedded
import WeftIdentity

@testable import WeftTransport

let tls = try! QUICTLS(identity: try! SiteIdentity.generate())
let sources = [
    try! SocketAddress(ipAddress: "198.18.0.7", port: 4433), try! SocketAddress(ipAddress: "198.18.0.9", port: 50_000),
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let input = UnsafeBufferPointer(start: start, count: count)
    let channel = EmbeddedChannel()
    let endpoint = QUICEndpoint(
        tls: tls, configuration: QUICConfiguration(),
        acceptor: QUICEndpoint.Acceptor(trusts: { _, _ in false }, accept: { _ in { _ in } }),
        closesWhenIdle: false)
    try! channel.pipeline.syncOperations.addHandler(endpoint)
    var received = [0, 0]
    var sent = [0, 0]
    var offset = 0
    while offset < input.count {
        var length = input.count - offset
        var source = 0
        if length >= 2 {
            let header = Int(input[offset]) << 8 | Int(input[offset + 1])
            source = header >> 15
            length = min(header & 0x7fff, input.count - offset - 2)
            offset += 2
        }
        let datagram = ByteBuffer(bytes: input[offset..<(offset + length)])
        offset += length
        received[source] += length
        try! channel.writeInbound(AddressedEnvelope(remoteAddress: sources[source], data: datagram))
        while let out = try! channel.readOutbound(as: AddressedEnvelope<ByteBuffer>.self) {
            let to = sources.firstIndex(of: out.remoteAddress)!
            sent[to] += out.data.readableBytes
        }
        // No handshake can complete (the verify callback trusts nobody): every address stays
        // unvalidated.
        for index in 0..<2 {
            precondition(
                sent[index] <= 3 * received[index], "sent \(sent[index]) bytes for \(received[index]) received")
        }
    }
    channel.embeddedEventLoop.advanceTime(by: .seconds(120))
    precondition(endpoint.connectionCount == 0, "\(endpoint.connectionCount) connections outlived their timeouts")
    precondition(endpoint.routeCount == 0, "\(endpoint.routeCount) routes outlived their connections")
    _ = try? channel.finish()
    return 0
}
