import NIOCore
import Testing
import WeftTunnel
import WeftWire

@Suite("link handshake: hello, welcome, refuse", .timeLimit(.minutes(10)))
struct LinkHandshakeTests {
    func bytes(_ actions: [LinkHandshake.Action]) -> ByteBuffer? {
        for case .write(let buffer) in actions { return buffer }
        return nil
    }

    func established(_ actions: [LinkHandshake.Action]) -> LinkHandshake.Established? {
        for case .established(let value) in actions { return value }
        return nil
    }

    @Test("both sides agree on the tunnel, split at any byte")
    func agree() throws {
        let hello = bytes(
            {
                var dialer = LinkHandshake(
                    role: .dialer(peerSite: "b", peerIncarnation: 22, linkID: 3), siteName: "a", incarnation: 11)
                return dialer.start()
            }())!
        for split in 0...hello.readableBytes {
            var dialer = LinkHandshake(
                role: .dialer(peerSite: "b", peerIncarnation: 22, linkID: 3), siteName: "a", incarnation: 11)
            var acceptor = LinkHandshake(role: .acceptor, siteName: "b", incarnation: 22)
            var wire = bytes(dialer.start())!
            // Tunnel bytes right behind the hello stay for the tunnel.
            wire.writeString("tunnel bytes")
            #expect(acceptor.start().isEmpty)
            var actions = acceptor.received(wire.getSlice(at: 0, length: split)!)
            actions += acceptor.received(wire.getSlice(at: split, length: wire.readableBytes - split)!)
            guard case .decide(let received) = actions.last else {
                Issue.record("no decision at split \(split): \(actions)")
                continue
            }
            #expect(received.siteName == "a" && received.linkID == 3)
            let accepted = acceptor.accept(incarnation: 22)
            let atAcceptor = try #require(established(accepted))
            #expect(String(buffer: atAcceptor.leftover) == "tunnel bytes")
            var answer = bytes(accepted)!
            answer.writeString("more")
            let atDialer = try #require(established(dialer.received(answer)))
            #expect(String(buffer: atDialer.leftover) == "more")
            #expect(atDialer.tunnelID == atAcceptor.tunnelID)
            #expect(atDialer.peerSite == "b" && atAcceptor.peerSite == "a")
            #expect(atDialer.peerIncarnation == 22 && atAcceptor.peerIncarnation == 11)
            #expect(dialer.isFinished && acceptor.isFinished)
        }
    }

    @Test(
        "a backup end, dialer or acceptor, makes the link a backup at both ends",
        arguments: [(false, false), (true, false), (false, true), (true, true)])
    func backupBit(_ dialerBackup: Bool, _ acceptorBackup: Bool) throws {
        var dialer = LinkHandshake(
            role: .dialer(peerSite: "b", peerIncarnation: 22, linkID: 3), siteName: "a", incarnation: 11,
            backup: dialerBackup)
        var acceptor = LinkHandshake(role: .acceptor, siteName: "b", incarnation: 22, backup: acceptorBackup)
        _ = acceptor.start()
        _ = acceptor.received(bytes(dialer.start())!)
        let accepted = acceptor.accept(incarnation: 22)
        let atAcceptor = try #require(established(accepted))
        let atDialer = try #require(established(dialer.received(bytes(accepted)!)))
        #expect(atAcceptor.backup == (dialerBackup || acceptorBackup))
        #expect(atDialer.backup == (dialerBackup || acceptorBackup))
        // Both ends say they take link policies and stream origins.
        for end in [atAcceptor, atDialer] {
            #expect(end.peerTakesPolicy && end.peerCapabilities & LinkHello.streamOrigins != 0)
        }
    }

    @Test("the tunnel id is the same from both ends and changes with either incarnation")
    func tunnelID() {
        let ab = TunnelID(localSite: "a", localIncarnation: 1, peerSite: "b", peerIncarnation: 2)
        let ba = TunnelID(localSite: "b", localIncarnation: 2, peerSite: "a", peerIncarnation: 1)
        #expect(ab == ba)
        #expect(ab != TunnelID(localSite: "a", localIncarnation: 1, peerSite: "b", peerIncarnation: 3))
        #expect(ab != TunnelID(localSite: "a", localIncarnation: 4, peerSite: "b", peerIncarnation: 2))
    }

    @Test("a dialer that knows an earlier incarnation of the peer is refused: unknown tunnel")
    func restartedPeer() throws {
        var dialer = LinkHandshake(
            role: .dialer(peerSite: "b", peerIncarnation: 21, linkID: 1), siteName: "a", incarnation: 11)
        var acceptor = LinkHandshake(role: .acceptor, siteName: "b", incarnation: 22)
        _ = acceptor.start()
        let hello = acceptor.received(bytes(dialer.start())!)
        guard case .decide(let asked) = hello.last else {
            Issue.record("expected a decision, got \(hello)")
            return
        }
        #expect(LinkHandshake.requestedIncarnation(in: asked, acceptor: "b") == 21)
        let actions = acceptor.accept(incarnation: 22)
        #expect(actions.contains { if case .failed = $0 { true } else { false } })
        let answer = dialer.received(try #require(bytes(actions)))
        guard case .refused(let refuse) = answer.first else {
            Issue.record("expected a refusal, got \(answer)")
            return
        }
        #expect(refuse.reason == .unknownTunnel)
        #expect(refuse.message.contains("restarted"))
    }

    @Test("a dialer with a new tunnel learns the acceptor's half from the welcome")
    func newTunnel() throws {
        var dialer = LinkHandshake(
            role: .dialer(peerSite: "b", peerIncarnation: LinkHandshake.unknownIncarnation, linkID: 1),
            siteName: "a", incarnation: 11)
        var acceptor = LinkHandshake(role: .acceptor, siteName: "b", incarnation: 22)
        _ = acceptor.start()
        guard case .decide(let hello) = acceptor.received(bytes(dialer.start())!).last else {
            Issue.record("expected a decision")
            return
        }
        #expect(LinkHandshake.requestedIncarnation(in: hello, acceptor: "b") == LinkHandshake.unknownIncarnation)
        let accepted = acceptor.accept(incarnation: 33)
        let atAcceptor = try #require(established(accepted))
        let welcomeBytes = try #require(bytes(accepted))
        let atDialer = try #require(established(dialer.received(welcomeBytes)))
        #expect(atDialer.peerIncarnation == 33 && atDialer.localIncarnation == 11)
        #expect(atAcceptor.peerIncarnation == 11 && atAcceptor.localIncarnation == 33)
        #expect(atDialer.tunnelID == atAcceptor.tunnelID)

        // A welcome from another half than the one the dialer knows fails the link.
        var knowing = LinkHandshake(
            role: .dialer(peerSite: "b", peerIncarnation: 33, linkID: 2), siteName: "a", incarnation: 11)
        _ = knowing.start()
        var welcome = ByteBuffer()
        TunnelFrameSerializer().serialize(
            .welcome(LinkWelcome(version: 1, siteName: "b", incarnation: 34, capabilities: 0)), into: &welcome)
        #expect(knowing.received(welcome).first.isFailure)
    }

    @Test("wrong version, a site talking to itself, the driver's refusal")
    func refusals() throws {
        // Version: a hello for versions this build does not speak.
        var acceptor = LinkHandshake(role: .acceptor, siteName: "b", incarnation: 2)
        _ = acceptor.start()
        var hello = ByteBuffer()
        TunnelFrameSerializer().serialize(
            .hello(
                LinkHello(
                    minVersion: 7, maxVersion: 9, siteName: "a", incarnation: 1,
                    tunnelID: TunnelID(localSite: "a", localIncarnation: 1, peerSite: "b", peerIncarnation: 2).bytes,
                    linkID: 0, capabilities: 0)), into: &hello)
        var actions = acceptor.received(hello)
        var parser = TunnelFrameParser()
        parser.append(try #require(bytes(actions)))
        #expect(
            try parser.nextFrame()
                == .refuse(LinkRefuse(reason: .unsupportedVersion, message: "this site speaks version 1, not 7...9")))

        // Itself.
        var dialer = LinkHandshake(
            role: .dialer(peerSite: "b", peerIncarnation: 2, linkID: 0), siteName: "b", incarnation: 2)
        acceptor = LinkHandshake(role: .acceptor, siteName: "b", incarnation: 2)
        _ = acceptor.start()
        actions = acceptor.received(bytes(dialer.start())!)
        guard case .refused(let refuse) = dialer.received(try #require(bytes(actions))).first else {
            Issue.record("expected a refusal")
            return
        }
        #expect(refuse.reason == .protocolViolation)

        // The driver says no (say, the certificate is not the one this site announced).
        dialer = LinkHandshake(
            role: .dialer(peerSite: "b", peerIncarnation: 2, linkID: 0), siteName: "a", incarnation: 1)
        acceptor = LinkHandshake(role: .acceptor, siteName: "b", incarnation: 2)
        _ = acceptor.start()
        _ = acceptor.received(bytes(dialer.start())!)
        actions = acceptor.refuse(.wrongIdentity, message: "certificate is not a's")
        guard case .refused(let byDriver) = dialer.received(try #require(bytes(actions))).first else {
            Issue.record("expected a refusal")
            return
        }
        #expect(byDriver == LinkRefuse(reason: .wrongIdentity, message: "certificate is not a's"))
    }

    @Test("garbage, a frame out of turn, an impostor's welcome and a timeout fail the handshake")
    func failures() {
        var acceptor = LinkHandshake(role: .acceptor, siteName: "b", incarnation: 2)
        _ = acceptor.start()
        #expect(acceptor.received(ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n")).first.isFailure)

        acceptor = LinkHandshake(role: .acceptor, siteName: "b", incarnation: 2)
        _ = acceptor.start()
        var ping = ByteBuffer()
        TunnelFrameSerializer().serialize(.ping(1), into: &ping)
        #expect(acceptor.received(ping).first.isFailure)

        // A header announcing a large handshake frame is refused before its payload arrives.
        acceptor = LinkHandshake(role: .acceptor, siteName: "b", incarnation: 2)
        _ = acceptor.start()
        #expect(acceptor.received(ByteBuffer(bytes: [0x01, 0, 0, 0x10, 0, 0])).first.isFailure)

        var dialer = LinkHandshake(
            role: .dialer(peerSite: "b", peerIncarnation: 2, linkID: 0), siteName: "a", incarnation: 1)
        _ = dialer.start()
        var welcome = ByteBuffer()
        TunnelFrameSerializer().serialize(
            .welcome(LinkWelcome(version: 1, siteName: "mallory", incarnation: 2, capabilities: 0)), into: &welcome)
        #expect(dialer.received(welcome).first.isFailure)

        dialer = LinkHandshake(
            role: .dialer(peerSite: "b", peerIncarnation: 2, linkID: 0), siteName: "a", incarnation: 1)
        _ = dialer.start()
        #expect(dialer.timedOut().first.isFailure)
        #expect(dialer.timedOut().isEmpty)
    }
}

extension Optional where Wrapped == LinkHandshake.Action {
    var isFailure: Bool {
        if case .failed = self { return true }
        return false
    }
}
