import Crypto
import Foundation
import NIOCore
import NIOPosix
import Testing
import WeftTestSupport

@testable import WeftTransport

/// Two Bluetooth controllers, named in `WEFT_VMLAB_BLUETOOTH` (`hci0,hci1`): the VM lab's
/// btvirt controllers (`scripts/vmlab/guest-bluetooth-sockets.sh`). This host's kernel has none.
private enum LabControllers {
    static let names: [String]? = {
        let names = ProcessInfo.processInfo.environment["WEFT_VMLAB_BLUETOOTH"]?.split(separator: ",").map(String.init)
        return names?.count == 2 ? names : nil
    }()
}

@Suite(
    "RFCOMM sockets between two Bluetooth controllers (the VM lab)", .serialized, .timeLimit(.minutes(5)),
    .enabled(
        if: LabControllers.names != nil,
        "needs two Bluetooth controllers; runs in the VM lab (sudo scripts/vmlab.sh), where btvirt makes them"))
struct RFCOMMSocketTests {
    @Test(
        "NIO channels over RFCOMM: a listener on one controller, a dial from the other, 256 KiB each way, sha256 equal")
    func transfer() async throws {
        let names = try #require(LabControllers.names)
        let server = try RFCOMMSocket.address(of: try #require(BluetoothAdapter(names[0])))
        let client = try RFCOMMSocket.address(of: try #require(BluetoothAdapter(names[1])))
        #expect(server != client)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let total = 256 << 10
        let payload = ByteBuffer(bytes: (0..<total).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) })
        let digest = Array(SHA256.hash(data: Array(payload.readableBytesView))).hexEncoded
        // The listener is a NIO server channel over the bound RFCOMM socket.
        let accepted = group.next().makePromise(of: Channel.self).failing(after: PatternSender.deadline)
        let serverCollector = ChannelCollector(expected: total, on: group.next())
        let listener = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(serverCollector)
                    accepted.succeed(channel)
                }
            }
            .withBoundSocket(try RFCOMMSocket.bound(adapter: server, channel: 7)).get()
        let dialed = try await NIOThreadPool.singleton.runIfActive {
            try RFCOMMSocket.connect(from: client, to: server, channel: 7, timeout: .seconds(30))
        }
        let clientCollector = ChannelCollector(expected: total, on: group.next())
        let clientChannel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(clientCollector)
                }
            }
            .withConnectedSocket(dialed).get()
        let serverChannel = try await accepted.futureResult.get()
        // Channels of a family NIO does not know have no addresses.
        #expect(serverChannel.remoteAddress == nil && clientChannel.localAddress == nil)
        let channels = [serverChannel, clientChannel]
        let results = [serverCollector.done.futureResult, clientCollector.done.futureResult]
        for channel in channels { try await channel.writeAndFlush(payload).get() }
        for result in results { #expect(try await result.get() == digest) }
        for channel in channels { try? await channel.close().get() }
        try await listener.close().get()
        try await group.shutdownGracefully()
    }

    @Test("a tunnel over a Bluetooth link: TLS and the handshake inside RFCOMM, 2 MiB, sha256 equal")
    func tunnelOverBluetooth() async throws {
        let names = try #require(LabControllers.names)
        let server = try RFCOMMSocket.address(of: try #require(BluetoothAdapter(names[0])))
        let client = try RFCOMMSocket.address(of: try #require(BluetoothAdapter(names[1])))
        let pair = try TunnelPair(
            listenTransport: BluetoothLinkTransport(), dialTransport: BluetoothLinkTransport(adapter: client),
            endpoint: { LinkEndpoint(transport: .bluetooth, host: server.description, port: $0) },
            silenceLimit: .seconds(20))
        // The listener names its adapter as the kernel does (`hci0`).
        try await pair.listen(host: names[0], port: 11, handshakeTimeout: .seconds(60))
        try await pair.dial()
        // RFCOMM multiplexes one session per pair of adapters, one connection per server
        // channel in it: a second link between the same adapters needs another channel.
        let second = await #expect(throws: (any Error).self) { try await pair.dial() }
        print("rfcomm: a second link to the same channel: \(second.map { "\($0)" } ?? "none")")
        let total = 2 << 20
        #expect(try await LinkTransportTests.transfer(pair, bytes: total))
        let snapshot = try await pair.alpha.eventLoop.submit { pair.alpha.snapshot() }.get()
        #expect(snapshot.links.count == 1)
        #expect(snapshot.links.allSatisfy { $0.transport == .bluetooth })
        print("rfcomm: 2 MiB through a tunnel over a Bluetooth link: sha256 equal")
        try await pair.shutdown()
    }

    @Test("a stranger in range: an RFCOMM connection that does not speak TLS is dropped, and a site links after it")
    func stranger() async throws {
        let names = try #require(LabControllers.names)
        let server = try RFCOMMSocket.address(of: try #require(BluetoothAdapter(names[0])))
        let client = try RFCOMMSocket.address(of: try #require(BluetoothAdapter(names[1])))
        let pair = try TunnelPair(
            listenTransport: BluetoothLinkTransport(), dialTransport: BluetoothLinkTransport(adapter: client),
            endpoint: { LinkEndpoint(transport: .bluetooth, host: server.description, port: $0) },
            silenceLimit: .seconds(20))
        try await pair.listen(host: names[0], port: 12, handshakeTimeout: .seconds(5))
        // The stranger connects and sends bytes that are not a TLS ClientHello.
        let closed = try await NIOThreadPool.singleton.runIfActive { () throws -> Bool in
            let fd = try RFCOMMSocket.connect(from: client, to: server, channel: 12, timeout: .seconds(30))
            defer { close(fd) }
            let junk = [UInt8](repeating: 0x47, count: 300)
            _ = junk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            // The listener must close it: wait for the end of the stream, for up to a minute.
            var buffer = [UInt8](repeating: 0, count: 4096)
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, 1000) > 0 else { continue }
                let count = read(fd, &buffer, buffer.count)
                if count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR) { return true }
            }
            return false
        }
        #expect(closed, "the listener kept a stranger's connection open")
        // The same adapters link on the same channel once the stranger's connection is gone.
        let deadline = ContinuousClock.now + .seconds(60)
        var linked = false
        while !linked && ContinuousClock.now < deadline {
            do {
                try await pair.dial()
                linked = true
            } catch {
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        #expect(linked)
        #expect(try await LinkTransportTests.transfer(pair, bytes: 256 << 10))
        print("rfcomm: a stranger's connection dropped at the handshake; a tunnel linked after it")
        try await pair.shutdown()
    }

    @Test("refusals: an adapter that is not there, a channel nobody listens on, a channel out of range")
    func refusals() async throws {
        let names = try #require(LabControllers.names)
        #expect(throws: LinkError.self) { try RFCOMMSocket.address(of: .index(200)) }
        let server = try RFCOMMSocket.address(of: try #require(BluetoothAdapter(names[0])))
        let client = try RFCOMMSocket.address(of: try #require(BluetoothAdapter(names[1])))
        let error = await #expect(throws: LinkError.self) {
            try await NIOThreadPool.singleton.runIfActive {
                try RFCOMMSocket.connect(from: client, to: server, channel: 29, timeout: .seconds(30))
            }
        }
        print("rfcomm: a dial to a channel nobody listens on: \(String(describing: error))")
        #expect(throws: LinkError.self) { try RFCOMMSocket.bound(adapter: server, channel: 0) }
        #expect(!RFCOMMSocket.channels.contains(31))
    }
}
