import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import WeftTransport

/// A USB device controller and its host side joined in the kernel (`dummy_hcd`), with configfs
/// and FunctionFS: the VM lab's guest (`scripts/vmlab/guest-usb-links.sh` sets
/// `WEFT_VMLAB_USB=1`). This host's kernel has no UDC.
private enum LabUSB {
    static let available = ProcessInfo.processInfo.environment["WEFT_VMLAB_USB"] == "1"
}

@Suite(
    "USB links between a weft gadget and libusb's host side (the VM lab)", .serialized, .timeLimit(.minutes(5)),
    .enabled(
        if: LabUSB.available,
        "needs a USB device controller and its host (dummy_hcd); runs in the VM lab (sudo scripts/vmlab.sh)"))
struct USBLinkTests {
    func pair(serial: String) throws -> TunnelPair {
        try TunnelPair(
            listenTransport: USBGadgetLinkTransport(serial: serial), dialTransport: try USBHostLinkTransport(),
            endpoint: { _ in LinkEndpoint(transport: .usb, host: serial, port: 1) },
            silenceLimit: .seconds(20))
    }

    /// Dials until a link is up: the gadget enumerates a moment after it is bound.
    func link(_ pair: TunnelPair) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if (try? await pair.dial()) != nil { return true }
            try? await Task.sleep(for: .milliseconds(500))
        }
        return false
    }

    @Test("a tunnel over a USB link: TLS and the handshake inside bulk transfers, 2 MiB each way, sha256 equal")
    func tunnelOverUSB() async throws {
        let pair = try pair(serial: "weft-labtest1")
        try await pair.listen(host: "", port: 1, handshakeTimeout: .seconds(30))
        #expect(await link(pair))
        #expect(try await LinkTransportTests.transfer(pair, bytes: 2 << 20))
        let snapshot = try await pair.alpha.eventLoop.submit { pair.alpha.snapshot() }.get()
        #expect(snapshot.links.count == 1 && snapshot.links.allSatisfy { $0.transport == .usb })
        print("usb: 2 MiB through a tunnel over a USB link: sha256 equal")
        try await pair.shutdown()
    }

    @Test("a stranger host: a USB link that does not speak TLS is dropped, and a site links after it")
    func stranger() async throws {
        let serial = "weft-labtest2"
        let pair = try pair(serial: serial)
        try await pair.listen(host: "", port: 1, handshakeTimeout: .seconds(5))
        // The stranger opens a link as any host would, then sends bytes that are not TLS.
        let deadline = ContinuousClock.now + .seconds(60)
        var opened: CInt?
        while opened == nil && ContinuousClock.now < deadline {
            opened = try? await NIOThreadPool.singleton.runIfActive {
                try USBHostLink.open(serial: serial, timeout: .seconds(10))
            }
            if opened == nil { try await Task.sleep(for: .milliseconds(500)) }
        }
        let fd = try #require(opened, "the gadget never accepted a link")
        let closed = try await NIOThreadPool.singleton.runIfActive { () -> Bool in
            defer { close(fd) }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
            let junk = [UInt8](repeating: 0x47, count: 300)
            _ = junk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let end = Date().addingTimeInterval(60)
            while Date() < end {
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, 1000) > 0 else { continue }
                let count = read(fd, &buffer, buffer.count)
                if count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR) { return true }
            }
            return false
        }
        #expect(closed, "the gadget's listener kept a stranger's link open")
        #expect(await link(pair))
        #expect(try await LinkTransportTests.transfer(pair, bytes: 256 << 10))
        print("usb: a stranger's link dropped at the handshake; a tunnel linked after it")
        try await pair.shutdown()
    }
}
