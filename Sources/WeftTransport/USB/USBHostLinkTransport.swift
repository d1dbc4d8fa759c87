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

/// One link to one gadget: its claimed interface, its session, and libusb's asynchronous
/// transfers that move the bytes (`USBLinkSession`). Several transfers are in flight each way
/// (`transfersInFlight`), so the bus never idles between one transfer and the next: the
/// host controller starts the next queued transfer the moment one completes.
///
/// Three threads serve a link: libusb's event thread (completions), the delivery thread (IN
/// transfers parsed and handed to NIO, then queued again) and the pump (what NIO writes,
/// framed into OUT transfers). The delivery thread, not the event thread, waits on NIO, so a
/// slow reader never holds up OUT completions. The interface is released when every transfer
/// is back and the threads have returned.
///
/// Each link has a libusb context of its own: its device list is read fresh when it opens, on
/// machines where libusb learns of new devices only through udev's daemon as well as others.
final class USBHostLink: @unchecked Sendable {
    /// Transfers queued at once on each endpoint.
    static let transfersInFlight = 4

    private let context: OpaquePointer
    private let handle: OpaquePointer
    private let session: USBLinkSession
    private let accepted = DispatchSemaphore(value: 0)
    /// Transfers submitted or waiting for the delivery thread, and whether the link is over.
    /// Cancelling, submitting, queueing and freeing happen under this lock, so none races
    /// another.
    private let state = NIOLockedValueBox(State())
    private let receivedCount = DispatchSemaphore(value: 0)
    /// Free slots for OUT transfers.
    private let outSlots = DispatchSemaphore(value: USBHostLink.transfersInFlight)

    private struct State {
        var finished = false
        var pending: Set<UnsafeMutablePointer<libusb_transfer>> = []
        /// IN transfers completed, in the order they completed (the stream's order).
        var received: [UnsafeMutablePointer<libusb_transfer>] = []
        /// The delivery thread has returned: completions are freed at once.
        var deliveryDone = false
    }

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
            !link.isFinished
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
        // Each thread holds the link until it returns; the event thread returns last.
        let events = Thread { [self] in
            var wait = timeval(tv_sec: 0, tv_usec: 250_000)
            while !state.withLockedValue({ $0.finished && $0.pending.isEmpty }) {
                libusb_handle_events_timeout_completed(context, &wait, nil)
            }
        }
        events.name = "weft usb host events"
        events.start()
        for _ in 0..<Self.transfersInFlight {
            guard let transfer = Self.transfer(length: USBLinkDevice.maxTransfer) else {
                finish()
                break
            }
            fill(transfer, endpoint: USBLinkDevice.inEndpoint, length: USBLinkDevice.maxTransfer)
            guard submit(transfer) else { break }
        }
        let delivery = Thread { [self] in deliveryLoop() }
        delivery.name = "weft usb host in"
        delivery.start()
        let serializer = USBLinkSerializer(
            session: session.session, maxTransfer: USBLinkDevice.maxTransfer,
            maxPacketSize: USBLinkDevice.framingPacketSize)
        let writer = Thread { [self] in
            if write(serializer.open()) {
                session.pump(serializer) { transfer in write(transfer) }
                // The last transfers (the `close` frame among them) go out before the
                // cancelling: a link over waits for a gadget that does not read at most 2 s.
                for _ in 0..<Self.transfersInFlight where outSlots.wait(timeout: .now() + .seconds(2)) == .timedOut {
                    break
                }
            }
            finish()
        }
        writer.name = "weft usb host out"
        writer.start()
    }

    /// A transfer with a buffer of `length` bytes that libusb frees with it.
    private static func transfer(length: Int) -> UnsafeMutablePointer<libusb_transfer>? {
        guard let transfer = libusb_alloc_transfer(0) else { return nil }
        guard let buffer = malloc(max(length, 1)) else {
            libusb_free_transfer(transfer)
            return nil
        }
        transfer.pointee.buffer = buffer.assumingMemoryBound(to: UInt8.self)
        transfer.pointee.flags = UInt8(LIBUSB_TRANSFER_FREE_BUFFER.rawValue)
        return transfer
    }

    /// Makes `transfer` a bulk transfer of `length` bytes on `endpoint`, without timeout, whose
    /// completion comes back to this link (`inCompleted` or `outCompleted`, by the endpoint).
    private func fill(_ transfer: UnsafeMutablePointer<libusb_transfer>, endpoint: UInt8, length: Int) {
        libusb_fill_bulk_transfer(
            transfer, handle, endpoint, transfer.pointee.buffer, Int32(length),
            { transfer in
                guard let transfer, let user = transfer.pointee.user_data else { return }
                let link = Unmanaged<USBHostLink>.fromOpaque(user).takeUnretainedValue()
                if transfer.pointee.endpoint == USBLinkDevice.inEndpoint {
                    link.inCompleted(transfer)
                } else {
                    link.outCompleted(transfer)
                }
            }, Unmanaged.passUnretained(self).toOpaque(), 0)
    }

    /// Submits `transfer` unless the link is over; false (the transfer freed, the link over)
    /// when it cannot go.
    private func submit(_ transfer: UnsafeMutablePointer<libusb_transfer>) -> Bool {
        let submitted = state.withLockedValue { state in
            guard !state.finished, libusb_submit_transfer(transfer) == 0 else {
                state.pending.remove(transfer)
                libusb_free_transfer(transfer)
                return false
            }
            state.pending.insert(transfer)
            return true
        }
        if !submitted { finish() }
        return submitted
    }

    /// Frees a transfer that is back.
    private func release(_ transfer: UnsafeMutablePointer<libusb_transfer>) {
        state.withLockedValue { state in
            state.pending.remove(transfer)
            libusb_free_transfer(transfer)
        }
    }

    /// Ends the link from this side: every transfer in flight is cancelled, and the threads
    /// return soon after.
    private func finish() {
        let first = state.withLockedValue { state in
            defer { state.finished = true }
            // A transfer that is not submitted (waiting for the delivery thread) is not found:
            // harmless.
            for transfer in state.pending { libusb_cancel_transfer(transfer) }
            return !state.finished
        }
        guard first else { return }
        session.end()
        accepted.signal()
        receivedCount.signal()
        for _ in 0..<Self.transfersInFlight { outSlots.signal() }
    }

    private var isFinished: Bool { state.withLockedValue { $0.finished } }

    /// On libusb's event thread: an IN transfer is back. Its bytes wait for the delivery
    /// thread; a failed one (the device gone, cancelled) ends the link.
    private func inCompleted(_ transfer: UnsafeMutablePointer<libusb_transfer>) {
        guard transfer.pointee.status == LIBUSB_TRANSFER_COMPLETED else {
            release(transfer)
            finish()
            return
        }
        let queued = state.withLockedValue { state in
            guard !state.deliveryDone else {
                state.pending.remove(transfer)
                libusb_free_transfer(transfer)
                return false
            }
            state.received.append(transfer)
            return true
        }
        if queued { receivedCount.signal() }
    }

    /// The IN side: transfers from the gadget, each ending with a short packet, parsed in the
    /// order they completed and handed to NIO; each is queued again once its bytes are out.
    private func deliveryLoop() {
        var parser = USBLinkParser(hostSession: session.session, maxTransfer: USBLinkDevice.maxTransfer)
        while true {
            receivedCount.wait()
            let next = state.withLockedValue { $0.received.isEmpty ? nil : $0.received.removeFirst() }
            guard let transfer = next else {
                if isFinished { break }
                continue
            }
            let bytes = ByteBuffer(
                bytes: UnsafeRawBufferPointer(
                    start: transfer.pointee.buffer, count: Int(transfer.pointee.actual_length)))
            guard !isFinished, take(bytes, parser: &parser) else {
                release(transfer)
                finish()
                continue
            }
            _ = submit(transfer)
        }
        // What completed after the end is freed here, and from now on at once.
        state.withLockedValue { state in
            state.deliveryDone = true
            for transfer in state.received {
                state.pending.remove(transfer)
                libusb_free_transfer(transfer)
            }
            state.received.removeAll()
        }
    }

    /// One IN transfer's frames; false when the link is over.
    private func take(_ transfer: ByteBuffer, parser: inout USBLinkParser) -> Bool {
        guard let events = try? parser.parse(transfer: transfer) else { return false }
        for event in events {
            switch event {
            case .accept: accepted.signal()
            case .data(let bytes): if !session.deliver(bytes) { return false }
            case .close: return false
            case .open: break
            }
        }
        return true
    }

    /// Queues one whole transfer on the OUT endpoint, waiting while `transfersInFlight` are;
    /// false when the link is over.
    private func write(_ bytes: ByteBuffer) -> Bool {
        outSlots.wait()
        guard !isFinished, let transfer = Self.transfer(length: bytes.readableBytes) else {
            outSlots.signal()
            return false
        }
        bytes.withUnsafeReadableBytes { source in
            UnsafeMutableRawPointer(transfer.pointee.buffer).copyMemory(
                from: source.baseAddress!, byteCount: source.count)
        }
        fill(transfer, endpoint: USBLinkDevice.outEndpoint, length: bytes.readableBytes)
        guard submit(transfer) else {
            outSlots.signal()
            return false
        }
        return true
    }

    /// On libusb's event thread: an OUT transfer is back; a failed one ends the link.
    private func outCompleted(_ transfer: UnsafeMutablePointer<libusb_transfer>) {
        let completed = transfer.pointee.status == LIBUSB_TRANSFER_COMPLETED
        release(transfer)
        outSlots.signal()
        if !completed { finish() }
    }
}
