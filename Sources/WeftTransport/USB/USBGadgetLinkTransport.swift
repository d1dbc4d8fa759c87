import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import WeftIdentity
import WeftWire

#if canImport(Glibc)
    import Glibc
#endif

/// The gadget side of USB links (`mode: usb-gadget`): this machine becomes a weft USB device
/// (`USBGadget`) and serves the links a host opens over its cable, one at a time — a new
/// `open` replaces the link before it (the host's earlier one died with a cable pulled or a
/// site restarted). Each link is a byte stream with the link's TLS and handshake inside, as on
/// TCP: a host that does not complete them is dropped like any stranger.
///
/// It only listens (the host dials). `listen`'s host names the USB device controller (empty:
/// the first); the port is unused. The listening channel stands for the gadget: closing it
/// unbinds and removes the gadget.
public struct USBGadgetLinkTransport: LinkTransport {
    /// The serial number the gadget presents, which the site announces.
    public let serial: String
    private let logger: Logger

    public init(serial: String, logger: Logger = Logger(label: "weft.usb")) {
        self.serial = serial
        self.logger = logger
    }

    public var kind: LinkEndpoint.Kind { .usb }

    public func dial(
        _ endpoint: LinkEndpoint, from local: SocketAddress?, on eventLoop: EventLoop, timeout: TimeAmount,
        expecting expected: CertificateFingerprint,
        ready: @escaping @Sendable (Channel) throws -> Void
    ) -> EventLoopFuture<Channel> {
        eventLoop.makeFailedFuture(LinkError(.transport, "a USB gadget does not dial: the host side does"))
    }

    public func listen(
        host: String, port: Int, group: EventLoopGroup, timeout: TimeAmount,
        trusts: @escaping @Sendable (Channel, CertificateFingerprint) -> Bool,
        accept: @escaping @Sendable (Channel) -> Ready?
    ) -> EventLoopFuture<Channel> {
        let server: USBGadgetServer
        let handle: USBLinkSession
        do {
            let gadget = try USBGadget(serial: serial, controller: host.isEmpty ? nil : host)
            server = USBGadgetServer(gadget: gadget, group: group, accept: accept, logger: logger)
            // The listening channel: one end of a socket pair that nothing writes to.
            handle = try USBLinkSession(session: 0)
        } catch {
            return group.next().makeFailedFuture(error)
        }
        server.start()
        return ClientBootstrap(group: group).withConnectedSocket(handle.channelEnd).map { channel in
            channel.closeFuture.whenComplete { _ in
                // Tearing down waits for the endpoint threads: not on an event loop.
                Thread.detachNewThread {
                    server.stop()
                    handle.end()
                }
            }
            return channel
        }
    }
}

/// Moves a gadget's links between its bulk endpoints and NIO (see `USBGadgetLinkTransport`).
final class USBGadgetServer: @unchecked Sendable {
    private struct State {
        var stopped = false
        var current: USBLinkSession?
        var threads: [ObjectIdentifier: InterruptibleThread] = [:]
    }

    private let gadget: USBGadget
    private let group: EventLoopGroup
    private let accept: @Sendable (Channel) -> LinkTransport.Ready?
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    /// Whole transfers go to the IN endpoint one at a time.
    private let writeLock = NIOLock()

    init(
        gadget: USBGadget, group: EventLoopGroup, accept: @escaping @Sendable (Channel) -> LinkTransport.Ready?,
        logger: Logger
    ) {
        self.gadget = gadget
        self.group = group
        self.accept = accept
        self.logger = logger
    }

    private var stopped: Bool { state.withLockedValue { $0.stopped } }

    func start() {
        logger.info(
            "USB gadget bound", metadata: ["controller": "\(gadget.controller)", "serial": "\(gadget.serial)"])
        spawn("weft usb ep0") { [self] in controlLoop() }
        spawn("weft usb out") { [self] in readLoop() }
    }

    /// Ends the link, unbinds and removes the gadget once every endpoint thread has returned.
    func stop() {
        let threads = state.withLockedValue { state in
            state.stopped = true
            return Array(state.threads.values)
        }
        endSession()
        gadget.unbind()
        for thread in threads where !thread.stop() {
            logger.warning("a USB endpoint thread did not stop; the gadget is left in place")
            return
        }
        gadget.teardown()
        logger.info("USB gadget removed", metadata: ["serial": "\(gadget.serial)"])
    }

    private func spawn(_ name: String, _ body: @escaping @Sendable () -> Void) {
        let box = NIOLockedValueBox<ObjectIdentifier?>(nil)
        let thread = InterruptibleThread(name: name) { [state] in
            body()
            if let id = box.withLockedValue({ $0 }) { state.withLockedValue { _ = $0.threads.removeValue(forKey: id) } }
        }
        let id = ObjectIdentifier(thread)
        state.withLockedValue { $0.threads[id] = thread }
        box.withLockedValue { $0 = id }
    }

    /// ep0's events: the host configuring the function (enable) or letting it go (disable,
    /// unbind: a cable pulled). Only logged; the endpoint threads find out by themselves.
    private func controlLoop() {
        var event = [UInt8](repeating: 0, count: 12)
        while !stopped {
            var poller = pollfd(fd: gadget.control, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 200) > 0 else { continue }
            let count = read(gadget.control, &event, event.count)
            guard count == event.count else { continue }
            // struct usb_functionfs_event: an 8-byte setup packet, then the type.
            switch event[8] {
            case 2: logger.info("USB host enabled the link function", metadata: ["serial": "\(gadget.serial)"])
            case 3: logger.info("USB host disabled the link function", metadata: ["serial": "\(gadget.serial)"])
            default: break
            }
        }
    }

    /// The OUT endpoint: one host transfer per read, parsed into the link's events.
    private func readLoop() {
        var parser = USBLinkParser(gadgetWithMaxTransfer: USBLinkDevice.maxTransfer)
        var buffer = [UInt8](repeating: 0, count: USBLinkDevice.maxTransfer)
        while !stopped {
            let count = read(gadget.output, &buffer, buffer.count)
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                // ESHUTDOWN: the host disabled the function (a cable pulled, the gadget
                // unbound); the next read waits until it is enabled again.
                endSession(reason: "USB function disabled: \(String(cString: strerror(code)))")
                parser = USBLinkParser(gadgetWithMaxTransfer: USBLinkDevice.maxTransfer)
                usleep(50_000)
                continue
            }
            guard count > 0 else { continue }
            let events: [USBLinkFrame.Event]
            do {
                events = try parser.parse(transfer: ByteBuffer(bytes: buffer[0..<count]))
            } catch {
                endSession(reason: "bad USB transfer from the host: \(error)")
                parser = USBLinkParser(gadgetWithMaxTransfer: USBLinkDevice.maxTransfer)
                continue
            }
            for event in events {
                switch event {
                case .open(let session): startSession(session)
                case .data(let bytes):
                    if let current = state.withLockedValue({ $0.current }), !current.deliver(bytes) {
                        endSession()
                    }
                case .close: endSession()
                case .accept: break
                }
            }
        }
        endSession()
    }

    private func endSession(reason: String? = nil) {
        let current = state.withLockedValue { state in
            defer { state.current = nil }
            return state.current
        }
        guard let current else { return }
        if let reason { logger.info("USB link ended", metadata: ["reason": "\(reason)"]) }
        current.end()
    }

    private func startSession(_ number: UInt32) {
        endSession()
        let session: USBLinkSession
        do {
            session = try USBLinkSession(session: number)
        } catch {
            logger.warning("cannot start a USB link", metadata: ["error": "\(error)"])
            return
        }
        guard
            state.withLockedValue({ state in
                guard !state.stopped else { return false }
                state.current = session
                return true
            })
        else { return }
        let accept = self.accept
        ClientBootstrap(group: group)
            .channelInitializer { channel in
                guard let ready = accept(channel) else { return channel.close() }
                return channel.eventLoop.makeCompletedFuture { try ready(channel) }
            }
            .withConnectedSocket(session.channelEnd)
            .whenFailure { [logger] error in
                logger.debug("a USB link was not taken", metadata: ["error": "\(error)"])
                session.end()
            }
        let serializer = USBLinkSerializer(
            session: number, maxTransfer: USBLinkDevice.maxTransfer, maxPacketSize: USBLinkDevice.framingPacketSize)
        spawn("weft usb in") { [self] in
            guard writeTransfer(serializer.accept()) else {
                session.end()
                return
            }
            session.pump(serializer) { transfer in writeTransfer(transfer) }
        }
    }

    /// Writes one whole transfer to the IN endpoint; false when the host cannot take it (the
    /// function disabled) or the gadget stops.
    private func writeTransfer(_ transfer: ByteBuffer) -> Bool {
        writeLock.withLock {
            transfer.withUnsafeReadableBytes { bytes in
                while !stopped {
                    let written = write(gadget.input, bytes.baseAddress, bytes.count)
                    if written == bytes.count { return true }
                    if written < 0 && errno == EINTR { continue }
                    return false
                }
                return false
            }
        }
    }
}
