import CLibUSB
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import WeftIdentity
import WeftWire

/// The host side of USB links (`mode: usb-host`): libusb-1.0 finds the weft gadget whose
/// serial number a peer announces (`USBLinkDevice`), claims its interface and carries a link
/// over its bulk endpoints (`USBLinkFrame`), with the link's TLS and handshake inside as on TCP.
///
/// Hot-plug: a weft gadget that arrives wakes the dial runs (`onArrival`), so a cable plugged
/// back re-links at once instead of after the run's backoff. A cable pulled fails the link's
/// transfers (no device): the link closes, and the tunnel re-sends on its other links.
///
/// It only dials; the gadget side listens.
public final class USBHostLinkTransport: LinkTransport, @unchecked Sendable {
    private let context: OpaquePointer
    private let arrival = NIOLockedValueBox<(@Sendable () -> Void)?>(nil)
    private let stopped = NIOLockedValueBox(false)
    private var hotplug: libusb_hotplug_callback_handle = 0
    /// Whether libusb reports arrivals on this machine (it does on Linux with usbfs).
    public private(set) var hasHotplug = false

    /// Opens libusb; fails where it cannot run at all.
    public init() throws {
        var context: OpaquePointer?
        let result = libusb_init(&context)
        guard result == 0, let context else {
            throw LinkError(.transport, "libusb cannot start: \(Self.text(result))")
        }
        self.context = context
        if libusb_has_capability(UInt32(LIBUSB_CAP_HAS_HOTPLUG.rawValue)) != 0 {
            let registered = libusb_hotplug_register_callback(
                context, Int32(LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED.rawValue), 0,
                Int32(USBLinkDevice.vendorID), Int32(USBLinkDevice.productID), LIBUSB_HOTPLUG_MATCH_ANY,
                { _, _, _, user in
                    guard let user else { return 0 }
                    Unmanaged<USBHostLinkTransport>.fromOpaque(user).takeUnretainedValue().arrived()
                    return 0
                }, Unmanaged.passUnretained(self).toOpaque(), &hotplug)
            hasHotplug = registered == 0
        }
        // libusb reports hot-plug events (and completes transfers) only while a thread handles its events.
        let thread = Thread { [self] in
            var wait = timeval(tv_sec: 0, tv_usec: 250_000)
            while !stopped.withLockedValue({ $0 }) {
                libusb_handle_events_timeout_completed(self.context, &wait, nil)
            }
        }
        thread.name = "weft usb events"
        thread.start()
    }

    /// Stops the event thread; the transport is not used afterwards. (A site's transport lives
    /// as long as the process.)
    public func shutdown() {
        if hasHotplug { libusb_hotplug_deregister_callback(context, hotplug) }
        stopped.withLockedValue { $0 = true }
    }

    /// Calls `handler` (on libusb's event thread: it must return at once) when a weft gadget is
    /// plugged in.
    public func onArrival(_ handler: @escaping @Sendable () -> Void) {
        arrival.withLockedValue { $0 = handler }
    }

    private func arrived() {
        arrival.withLockedValue { $0 }?()
    }

    public var kind: LinkEndpoint.Kind { .usb }

    /// Dials never wait on an event loop: finding the device and waiting for its `accept` run
    /// here.
    static let connectPool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        return pool
    }()

    public func dial(
        _ endpoint: LinkEndpoint, from local: SocketAddress?, on eventLoop: EventLoop, timeout: TimeAmount,
        expecting expected: CertificateFingerprint,
        ready: @escaping @Sendable (Channel) throws -> Void
    ) -> EventLoopFuture<Channel> {
        guard endpoint.transport == .usb, USBLinkDevice.isSerial(endpoint.host) else {
            return eventLoop.makeFailedFuture(LinkError(.transport, "not a USB endpoint: \(endpoint)"))
        }
        return Self.connectPool.runIfActive(eventLoop: eventLoop) {
            try USBHostLink.open(serial: endpoint.host, timeout: timeout)
        }.flatMap { fd in
            ClientBootstrap(group: eventLoop).withConnectedSocket(fd)
        }.readied(ready)
    }

    public func listen(
        host: String, port: Int, group: EventLoopGroup, timeout: TimeAmount,
        trusts: @escaping @Sendable (Channel, CertificateFingerprint) -> Bool,
        accept: @escaping @Sendable (Channel) -> Ready?
    ) -> EventLoopFuture<Channel> {
        group.next().makeFailedFuture(
            LinkError(.transport, "the USB host side does not listen: it dials the gadgets peers announce"))
    }

    static func text(_ code: Int32) -> String {
        String(cString: libusb_error_name(code))
    }
}

/// One link to one gadget: its claimed interface, its session, and the two threads that move
/// transfers (`USBLinkSession`). The interface is released when both have returned.
///
/// Each link has a libusb context of its own: its device list is read fresh when it opens, on
/// machines where libusb learns of new devices only through udev's daemon as well as others.
final class USBHostLink: @unchecked Sendable {
    private let context: OpaquePointer
    private let handle: OpaquePointer
    private let session: USBLinkSession
    private let accepted = DispatchSemaphore(value: 0)
    /// Set when the device is gone or the link is over: the threads return.
    private let finished = NIOLockedValueBox(false)

    /// How long one libusb call waits before the thread looks again whether the link is over.
    static let pollMilliseconds: UInt32 = 250

    private init(context: OpaquePointer, handle: OpaquePointer, session: USBLinkSession) {
        self.context = context
        self.handle = handle
        self.session = session
    }

    deinit {
        libusb_release_interface(handle, 0)
        libusb_close(handle)
        libusb_exit(context)
    }

    /// Finds the gadget, opens a link and waits for its `accept`; returns NIO's end of it.
    static func open(serial: String, timeout: TimeAmount) throws -> CInt {
        var opened: OpaquePointer?
        let started = libusb_init(&opened)
        guard started == 0, let context = opened else {
            throw LinkError(.transport, "libusb cannot start: \(USBHostLinkTransport.text(started))")
        }
        let handle: OpaquePointer
        do {
            handle = try find(serial: serial, context: context)
        } catch {
            libusb_exit(context)
            throw error
        }
        libusb_set_auto_detach_kernel_driver(handle, 1)
        let claimed = libusb_claim_interface(handle, 0)
        guard claimed == 0 else {
            libusb_close(handle)
            libusb_exit(context)
            throw LinkError(
                .transport,
                "USB gadget \(serial): cannot claim its interface: \(USBHostLinkTransport.text(claimed)) (another program holds it, or no permission)"
            )
        }
        let number = UInt32.random(in: 1...UInt32.max)
        let link: USBHostLink
        do {
            link = USBHostLink(context: context, handle: handle, session: try USBLinkSession(session: number))
        } catch {
            libusb_release_interface(handle, 0)
            libusb_close(handle)
            libusb_exit(context)
            throw error
        }
        link.start()
        let milliseconds = max(timeout.nanoseconds / 1_000_000, 1)
        guard link.accepted.wait(timeout: .now() + .milliseconds(Int(milliseconds))) == .success,
            !link.finished.withLockedValue({ $0 })
        else {
            link.finish()
            throw LinkError(.handshakeTimeout, "USB gadget \(serial) did not accept a link")
        }
        return link.session.channelEnd
    }

    /// The weft gadget with this serial number, opened.
    private static func find(serial: String, context: OpaquePointer) throws -> OpaquePointer {
        var list: UnsafeMutablePointer<OpaquePointer?>?
        let count = libusb_get_device_list(context, &list)
        guard count >= 0, let list else {
            throw LinkError(.transport, "cannot list USB devices: \(USBHostLinkTransport.text(Int32(count)))")
        }
        defer { libusb_free_device_list(list, 1) }
        var refused: Int32?
        for index in 0..<count {
            guard let device = list[index] else { continue }
            var descriptor = libusb_device_descriptor()
            guard libusb_get_device_descriptor(device, &descriptor) == 0,
                descriptor.idVendor == USBLinkDevice.vendorID, descriptor.idProduct == USBLinkDevice.productID,
                descriptor.iSerialNumber > 0
            else { continue }
            var handle: OpaquePointer?
            let opened = libusb_open(device, &handle)
            guard opened == 0, let handle else {
                refused = opened
                continue
            }
            var text = [UInt8](repeating: 0, count: 64)
            let length = libusb_get_string_descriptor_ascii(handle, descriptor.iSerialNumber, &text, Int32(text.count))
            if length > 0, String(decoding: text[0..<Int(length)], as: UTF8.self) == serial {
                return handle
            }
            libusb_close(handle)
        }
        if let refused {
            throw LinkError(
                .transport,
                "USB gadget \(serial) not found; a weft gadget could not be opened: \(USBHostLinkTransport.text(refused)) (permissions?)"
            )
        }
        throw LinkError(.transport, "no USB gadget \(serial) is plugged in")
    }

    private func start() {
        let reader = Thread { [self] in readLoop() }
        reader.name = "weft usb host in"
        reader.start()
        let serializer = USBLinkSerializer(
            session: session.session, maxTransfer: USBLinkDevice.maxTransfer,
            maxPacketSize: USBLinkDevice.framingPacketSize)
        let writer = Thread { [self] in
            guard write(serializer.open()) else {
                finish()
                return
            }
            session.pump(serializer) { transfer in write(transfer) }
            finish()
        }
        writer.name = "weft usb host out"
        writer.start()
    }

    /// Ends the link from this side; both threads return soon after.
    private func finish() {
        finished.withLockedValue { $0 = true }
        session.end()
        accepted.signal()
    }

    private var isFinished: Bool { finished.withLockedValue { $0 } }

    /// The IN endpoint: transfers from the gadget, each ending with a short packet. A libusb
    /// call that times out part-way has received whole packets only, so the next call goes on
    /// filling the same transfer.
    private func readLoop() {
        var parser = USBLinkParser(hostSession: session.session, maxTransfer: USBLinkDevice.maxTransfer)
        var buffer = [UInt8](repeating: 0, count: USBLinkDevice.maxTransfer)
        var filled = 0
        while !isFinished {
            var got: Int32 = 0
            let result = buffer.withUnsafeMutableBufferPointer { pointer in
                libusb_bulk_transfer(
                    handle, USBLinkDevice.inEndpoint, pointer.baseAddress! + filled, Int32(pointer.count - filled),
                    &got,
                    Self.pollMilliseconds)
            }
            filled += Int(got)
            if result == LIBUSB_ERROR_TIMEOUT.rawValue { continue }
            guard result == 0 else {
                finish()
                return
            }
            let transfer = ByteBuffer(bytes: buffer[0..<filled])
            filled = 0
            let events: [USBLinkFrame.Event]
            do {
                events = try parser.parse(transfer: transfer)
            } catch {
                finish()
                return
            }
            for event in events {
                switch event {
                case .accept: accepted.signal()
                case .data(let bytes):
                    if !session.deliver(bytes) {
                        finish()
                        return
                    }
                case .close:
                    finish()
                    return
                case .open: break
                }
            }
        }
    }

    /// Sends one whole transfer to the OUT endpoint; false when the device is gone, or the link
    /// is over and the gadget has taken nothing for a while.
    private func write(_ transfer: ByteBuffer) -> Bool {
        var bytes = Array(transfer.readableBytesView)
        var sent = 0
        var idle = 0
        while sent < bytes.count {
            var got: Int32 = 0
            let result = bytes.withUnsafeMutableBufferPointer { pointer in
                libusb_bulk_transfer(
                    handle, USBLinkDevice.outEndpoint, pointer.baseAddress! + sent, Int32(pointer.count - sent), &got,
                    Self.pollMilliseconds)
            }
            sent += Int(got)
            if result == 0 { continue }
            guard result == LIBUSB_ERROR_TIMEOUT.rawValue else { return false }
            idle = got > 0 ? 0 : idle + 1
            // A link that is over does not wait long for a gadget that does not read.
            if isFinished && idle >= 8 { return false }
        }
        return true
    }
}
