import NIOCore
import Testing
import WeftWire

@Suite(
    "USB link framing: short packets, zero-length packets, a transfer cut short, stale links", .timeLimit(.minutes(10)))
struct USBLinkFramingTests {
    static let session: UInt32 = 0xC0FF_EE01

    func stream(_ count: Int, seed: UInt8 = 1) -> ByteBuffer {
        ByteBuffer(bytes: (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) })
    }

    /// A gadget parser that has taken the host's open.
    func openedGadget(maxTransfer: Int, session: UInt32 = Self.session) throws -> USBLinkParser {
        var gadget = USBLinkParser(gadgetWithMaxTransfer: maxTransfer)
        let host = USBLinkSerializer(session: session, maxTransfer: maxTransfer, maxPacketSize: 512)
        #expect(try gadget.parse(transfer: host.open()) == [.open(session: session)])
        return gadget
    }

    @Test(
        "every stream size arrives whole, in transfers no longer than the limit and none a multiple of the packet size",
        arguments: [(64, 1_024), (512, 2_048), (512, 16_384), (1_024, 4_096)])
    func roundTrip(packet: Int, maxTransfer: Int) throws {
        let serializer = USBLinkSerializer(session: Self.session, maxTransfer: maxTransfer, maxPacketSize: packet)
        var gadget = try openedGadget(maxTransfer: maxTransfer)
        // Every size around the packet and transfer boundaries, and a few far past them.
        var sizes = Array(1...(3 * packet + 40))
        for boundary in [maxTransfer, 2 * maxTransfer, serializer.maxPayload, 2 * serializer.maxPayload] {
            sizes += (boundary - 30)...(boundary + 30)
        }
        sizes += [100_000, 1 << 20]
        for size in sizes {
            let sent = stream(size, seed: UInt8(truncatingIfNeeded: size))
            var received = ByteBuffer()
            for transfer in serializer.transfers(carrying: sent) {
                #expect(transfer.readableBytes <= maxTransfer)
                #expect(
                    transfer.readableBytes % packet != 0, "a transfer of \(transfer.readableBytes) B ends on a packet")
                for event in try gadget.parse(transfer: transfer) {
                    guard case .data(var bytes) = event else {
                        Issue.record("unexpected \(event)")
                        continue
                    }
                    received.writeBuffer(&bytes)
                }
            }
            #expect(received == sent, "size \(size)")
        }
        #expect(gadget.staleFrames == 0)
    }

    @Test("control transfers end with a short packet too; open, accept and close reach the other side")
    func control() throws {
        for packet in [8, 16, 64, 512] {
            let host = USBLinkSerializer(session: Self.session, maxTransfer: 4_096, maxPacketSize: packet)
            for transfer in [host.open(), host.accept(), host.close()] {
                #expect(transfer.readableBytes % packet != 0)
            }
        }
        // Packet sizes are powers of two from 8: anything else is taken down to one.
        for (asked, taken) in [(0, 8), (12, 8), (64, 64), (1_000, 512), (1_024, 1_024)] {
            #expect(USBLinkSerializer(session: 1, maxTransfer: 4_096, maxPacketSize: asked).maxPacketSize == taken)
        }
        let hostSide = USBLinkSerializer(session: Self.session, maxTransfer: 4_096, maxPacketSize: 512)
        var gadget = USBLinkParser(gadgetWithMaxTransfer: 4_096)
        #expect(gadget.session == nil)
        #expect(try gadget.parse(transfer: hostSide.open()) == [.open(session: Self.session)])
        #expect(gadget.session == Self.session)
        let gadgetSide = USBLinkSerializer(session: Self.session, maxTransfer: 4_096, maxPacketSize: 512)
        var host = USBLinkParser(hostSession: Self.session, maxTransfer: 4_096)
        #expect(try host.parse(transfer: gadgetSide.accept()) == [.accept(session: Self.session)])
        #expect(try host.parse(transfer: gadgetSide.close()) == [.close])
        #expect(try gadget.parse(transfer: hostSide.close()) == [.close])
    }

    @Test("a zero-length transfer says nothing")
    func zeroLengthPacket() throws {
        var gadget = try openedGadget(maxTransfer: 4_096)
        #expect(try gadget.parse(transfer: ByteBuffer()).isEmpty)
        var host = USBLinkParser(hostSession: Self.session, maxTransfer: 4_096)
        #expect(try host.parse(transfer: ByteBuffer()).isEmpty)
    }

    @Test("a transfer cut short anywhere inside a frame breaks the link; cut at a frame's end it is whole")
    func cancelledMidway() throws {
        let serializer = USBLinkSerializer(session: Self.session, maxTransfer: 4_096, maxPacketSize: 512)
        // 500 bytes: one data frame of 512 B, so a pad frame follows (524 B in all).
        let transfer = try #require(serializer.transfers(carrying: stream(500)).first)
        #expect(transfer.readableBytes == 512 + USBLinkFrame.headerSize)
        for cut in 1..<transfer.readableBytes {
            var gadget = try openedGadget(maxTransfer: 4_096)
            let prefix = transfer.getSlice(at: transfer.readerIndex, length: cut)!
            if cut == 512 {
                // The data frame ended exactly there: the pad frame was lost, nothing else.
                #expect(try gadget.parse(transfer: prefix) == [.data(stream(500))])
                continue
            }
            #expect(throws: WireError.self, "cut at \(cut)") { try gadget.parse(transfer: prefix) }
        }
        var gadget = try openedGadget(maxTransfer: 4_096)
        do {
            _ = try gadget.parse(transfer: transfer.getSlice(at: transfer.readerIndex, length: 100)!)
            Issue.record("a transfer cut inside its payload parsed")
        } catch {
            #expect(error.code == .truncated)
        }
    }

    @Test("frames of an earlier link are dropped and counted; a new open replaces the link")
    func staleLinks() throws {
        let old = USBLinkSerializer(session: 1, maxTransfer: 4_096, maxPacketSize: 512)
        let new = USBLinkSerializer(session: 2, maxTransfer: 4_096, maxPacketSize: 512)
        var gadget = USBLinkParser(gadgetWithMaxTransfer: 4_096)
        // Before any open, data is nobody's.
        #expect(try gadget.parse(transfer: old.transfers(carrying: stream(10))[0]).isEmpty)
        #expect(gadget.staleFrames == 1)
        #expect(try gadget.parse(transfer: new.open()) == [.open(session: 2)])
        #expect(gadget.staleFrames == 0)
        // The old link's queued bytes and its close arrive late: dropped.
        #expect(try gadget.parse(transfer: old.transfers(carrying: stream(10))[0]).isEmpty)
        #expect(try gadget.parse(transfer: old.close()).isEmpty)
        #expect(gadget.staleFrames == 2)
        #expect(try gadget.parse(transfer: new.transfers(carrying: stream(10))[0]) == [.data(stream(10))])
        // The host takes only its own session's accept.
        var host = USBLinkParser(hostSession: 2, maxTransfer: 4_096)
        #expect(try host.parse(transfer: old.accept()).isEmpty)
        #expect(host.staleFrames == 1)
        #expect(try host.parse(transfer: new.accept()) == [.accept(session: 2)])
    }

    @Test("the peer's values are checked before use: lengths, magic, kind, the zero byte, version, direction")
    func hostileTransfers() throws {
        func frame(magic: UInt16 = USBLinkFrame.magic, kind: UInt8 = 3, zero: UInt8 = 0, length: UInt32, payload: Int)
            -> ByteBuffer
        {
            var buffer = ByteBuffer()
            buffer.writeInteger(magic)
            buffer.writeInteger(kind)
            buffer.writeInteger(zero)
            buffer.writeInteger(Self.session)
            buffer.writeInteger(length)
            buffer.writeRepeatingByte(0x41, count: payload)
            return buffer
        }
        func code(_ transfer: ByteBuffer, gadget: Bool = true) throws -> WireError.Code? {
            var parser =
                gadget
                ? try openedGadget(maxTransfer: 4_096) : USBLinkParser(hostSession: Self.session, maxTransfer: 4_096)
            do {
                _ = try parser.parse(transfer: transfer)
                return nil
            } catch {
                return error.code
            }
        }
        #expect(try code(frame(length: 10, payload: 10)) == nil)
        #expect(try code(frame(length: UInt32.max, payload: 10)) == .truncated)
        #expect(try code(frame(length: 4_096, payload: 4_096 - USBLinkFrame.headerSize)) == .truncated)
        #expect(try code(frame(length: 5_000, payload: 5_000)) == .limitExceeded)
        #expect(try code(frame(magic: 0x4745, length: 1, payload: 1)) == .invalidValue)
        #expect(try code(frame(kind: 0, length: 1, payload: 1)) == .invalidValue)
        #expect(try code(frame(kind: 9, length: 1, payload: 1)) == .invalidValue)
        #expect(try code(frame(zero: 1, length: 1, payload: 1)) == .invalidValue)
        #expect(try code(ByteBuffer(bytes: [0x57, 0x46, 3])) == .truncated)
        // open carries the version; a later one is not spoken here.
        var future = frame(kind: 1, length: 1, payload: 0)
        future.writeInteger(UInt8(2))
        #expect(try code(future) == .unsupportedVersion)
        #expect(try code(frame(kind: 1, length: 0, payload: 0)) == .invalidValue)
        // Each end takes only what its peer sends.
        let host = USBLinkSerializer(session: Self.session, maxTransfer: 4_096, maxPacketSize: 512)
        #expect(try code(host.open(), gadget: false) == .invalidValue)
        #expect(try code(host.accept(), gadget: true) == .invalidValue)
    }
}
