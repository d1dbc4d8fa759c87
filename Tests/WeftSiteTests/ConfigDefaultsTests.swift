import Testing
import WeftDiscovery
import WeftTransport

@testable import WeftSite

@Suite("config: valid files and defaults", .timeLimit(.minutes(10)))
struct ConfigDefaultsTests {
    @Test("the minimal file gets every default")
    func minimalDefaults() throws {
        let loaded = try loadConfig(minimalConfig)
        let config = loaded.configuration
        #expect(config.siteName == "site01")
        #expect(config.crypto.key == "0123456789abcdef")
        #expect(config.logger == LoggerSettings(level: .info, format: .text, file: nil))
        #expect(config.messageChannel.mqtt.broker == BrokerAddress(useTLS: false, host: "127.0.0.1", port: 1883))
        #expect(config.messageChannel.mqtt.topicIsDerived)
        #expect(config.messageChannel.mqtt.topic == MeshTopic.derived(fromKey: "0123456789abcdef"))
        #expect(!config.messageChannel.mqtt.topic.contains("0123456789abcdef"))
        #expect(config.messageChannel.mqtt.username == nil)
        #expect(config.tunnel == TunnelSettings(localSockets: [], interfaces: [], linksPerPath: 1, connectTimeout: 10))
        #expect(config.localExposedApps.isEmpty)
        #expect(config.remoteApps.isEmpty)
        #expect(config.restfulApi == RestfulAPISettings())
        #expect(config.restfulApi.enabled == false)
        #expect(config.restfulApi.listenHost == "127.0.0.1" && config.restfulApi.listenPort == 18080)
        #expect(config.stateDir == "/home/tester/.weft")
        #expect(config.stun.isEmpty)
        #expect(loaded.warnings.isEmpty)
    }

    @Test("crypto.trust and crypto.pinnedSites: weft's trust settings beside wovenet's key")
    func trustSettings() throws {
        #expect(try loadConfig(minimalConfig).configuration.crypto.trust == .firstUse)
        let loaded = try loadConfig(
            minimalConfig.replacingOccurrences(
                of: "\"0123456789abcdef\"",
                with: "\"0123456789abcdef\"\n  trust: Pinned\n  pinnedSites:\n  - siteName: beta\n"
                    + "    fingerprint: sha256:abababababababababababababababababababababababababababababababab"))
        #expect(loaded.configuration.crypto.trust == .pinned)
        #expect(
            loaded.configuration.crypto.pinnedSites.mapValues(\.description) == [
                "beta": "sha256:abababababababababababababababababababababababababababababababab"
            ])
        #expect(!loaded.configuration.crypto.description.contains("0123456789abcdef"))
        let alone = try loadConfig(
            minimalConfig.replacingOccurrences(
                of: "\"0123456789abcdef\"", with: "\"0123456789abcdef\"\n  trust: pinned"))
        #expect(alone.warnings.contains { $0.message.contains("only sites pinned with `weft trust pin` can join") })
    }

    @Test(
        "crypto.previousKeys: read and announced under during a rotation; each checked like the key; a derived topic each"
    )
    func previousKeys() throws {
        let rotating = minimalConfig.replacingOccurrences(
            of: "\"0123456789abcdef\"", with: "\"the-new-mesh-key\"\n  previousKeys: [\"0123456789abcdef\"]")
        let loaded = try loadConfig(rotating)
        #expect(loaded.configuration.crypto.previousKeys == ["0123456789abcdef"])
        #expect(!loaded.configuration.crypto.description.contains("0123456789abcdef"))
        #expect(loaded.warnings.isEmpty)
        let ring = loaded.configuration.meshKeyRing
        #expect(ring.current.topic == MeshTopic.derived(fromKey: "the-new-mesh-key"))
        #expect(ring.previous.map(\.topic) == [MeshTopic.derived(fromKey: "0123456789abcdef")])
        // One configured topic serves every key.
        let fixed = try loadConfig(rotating + "    topic: mesh/one\n")
        #expect(fixed.configuration.meshKeyRing.all.map(\.topic) == ["mesh/one", "mesh/one"])

        let short = configErrors(
            minimalConfig.replacingOccurrences(
                of: "\"0123456789abcdef\"", with: "\"0123456789abcdef\"\n  previousKeys: [tiny, \"tinykey\"]"))
        #expect(
            short.contains { $0.path == "crypto.previousKeys[0]" && $0.message.contains("expected 8 to 255 bytes") })
        #expect(short.allSatisfy { !$0.description.contains("tinykey") })
        let many = configErrors(
            minimalConfig.replacingOccurrences(
                of: "\"0123456789abcdef\"",
                with: "\"0123456789abcdef\"\n  previousKeys: [k1k1k1k1, k2k2k2k2, k3k3k3k3, k4k4k4k4, k5k5k5k5]"))
        #expect(many.contains { $0.path == "crypto.previousKeys" && $0.message.contains("the limit is 4") })
        let repeated = try loadConfig(
            minimalConfig.replacingOccurrences(
                of: "\"0123456789abcdef\"", with: "\"0123456789abcdef\"\n  previousKeys: [\"0123456789abcdef\"]"))
        #expect(repeated.configuration.crypto.previousKeys.isEmpty)
        #expect(
            repeated.warnings.contains {
                $0.path == "crypto.previousKeys[0]" && $0.message.contains("repeats crypto.key")
            })
    }

    @Test("crypto.revokers: site names pinned in crypto.pinnedSites; an unpinned one is an error, this site a warning")
    func revokers() throws {
        let pin = "  pinnedSites:\n  - {siteName: hq, fingerprint: \"sha256:\(String(repeating: "ab", count: 32))\"}\n"
        let loaded = try loadConfig(
            minimalConfig.replacingOccurrences(
                of: "\"0123456789abcdef\"\n", with: "\"0123456789abcdef\"\n  revokers: [hq, site01]\n" + pin))
        #expect(loaded.configuration.crypto.revokers == ["hq"])
        #expect(loaded.warnings.contains { $0.path == "crypto.revokers[1]" && $0.message.contains("always apply") })
        let unpinned = configErrors(
            minimalConfig.replacingOccurrences(
                of: "\"0123456789abcdef\"\n", with: "\"0123456789abcdef\"\n  revokers: [hq, ops]\n" + pin))
        #expect(
            unpinned.contains {
                $0.path == "crypto.revokers[1]" && $0.message.contains("not in crypto.pinnedSites")
            }, "\(unpinned)")
        #expect(!unpinned.contains { $0.path == "crypto.revokers[0]" })
    }

    @Test("localExposedApps[].allowedSites: a list of site names; none means every member")
    func allowedSites() throws {
        let loaded = try loadConfig(
            minimalConfig
                + "localExposedApps:\n- appName: db\n  appSocket: tcp:127.0.0.1:5432\n  allowedSites: [ops, web]\n"
                + "- appName: open\n  appSocket: tcp:127.0.0.1:80\n- appName: empty\n  appSocket: tcp:127.0.0.1:81\n"
                + "  allowedSites: []\n")
        let apps = loaded.configuration.localExposedApps
        #expect(apps.map(\.allowedSites) == [["ops", "web"], [], []])
        #expect(apps[0].isAllowed(for: "ops") && !apps[0].isAllowed(for: "guest") && apps[1].isAllowed(for: "guest"))
        #expect(
            loaded.warnings.contains {
                $0.path == "localExposedApps[2].allowedSites" && $0.message.contains("every member")
            })
        let twice = configErrors(
            minimalConfig
                + "localExposedApps:\n- appName: db\n  appSocket: tcp:127.0.0.1:5432\n  allowedSites: [ops, ops]\n")
        #expect(
            twice.contains { $0.path == "localExposedApps[0].allowedSites[1]" && $0.message.contains("listed twice") })
    }

    @Test("the derived topic depends on the key only, and hides it")
    func derivedTopic() {
        let a = MeshTopic.derived(fromKey: "correct horse battery")
        #expect(a == MeshTopic.derived(fromKey: "correct horse battery"))
        #expect(a != MeshTopic.derived(fromKey: "correct horse batterz"))
        #expect(a.hasPrefix("weft/") && a.count == 5 + 32)
        #expect(!a.contains("horse"))
    }

    @Test("logger levels and formats in any case")
    func loggerValues() throws {
        let cases: [(String, String, LoggerSettings.Level, LoggerSettings.Format)] = [
            ("debug", "JSON", .debug, .json), ("Info", "text", .info, .text), ("WARN", "Text", .warn, .text),
            ("warning", "json", .warn, .json), ("error", "json", .error, .json),
        ]
        for (level, format, expectedLevel, expectedFormat) in cases {
            let config = try loadConfig(
                minimalConfig + "logger:\n  level: \(level)\n  format: \(format)\n  file: logs/weft.log\n"
            )
            .configuration
            #expect(config.logger.level == expectedLevel)
            #expect(config.logger.format == expectedFormat)
            #expect(config.logger.file == "/etc/weft/logs/weft.log")
        }
    }

    @Test("an empty logger.file means standard output, as in wovenet")
    func emptyLogFile() throws {
        let config = try loadConfig(minimalConfig + "logger:\n  file: \"\"\n").configuration
        #expect(config.logger.file == nil)
    }

    @Test("mqtt settings: mqtts, default ports, IPv6, credentials, topic")
    func mqttSettings() throws {
        let yaml = """
            siteName: a
            crypto: {key: "0123456789abcdef"}
            messageChannel:
              protocol: MQTT
              mqtt:
                brokerServer: mqtts://broker.example.net
                topic: my/mesh
                username: weft
                password: s3cret
                caFile: /etc/ssl/certs/ca-certificates.crt

            """
        let mqtt = try loadConfig(yaml).configuration.messageChannel.mqtt
        #expect(mqtt.broker == BrokerAddress(useTLS: true, host: "broker.example.net", port: 8883))
        #expect(mqtt.topic == "my/mesh" && !mqtt.topicIsDerived)
        #expect(mqtt.username == "weft" && mqtt.password == "s3cret")
        #expect(!mqtt.description.contains("s3cret"))
        #expect(mqtt.caFile == "/etc/ssl/certs/ca-certificates.crt")

        for (text, expected) in [
            ("mqtt://[::1]:1884", BrokerAddress(useTLS: false, host: "::1", port: 1884)),
            ("mqtt://[::1]", BrokerAddress(useTLS: false, host: "::1", port: 1883)),
            ("MQTT://localhost", BrokerAddress(useTLS: false, host: "localhost", port: 1883)),
            ("mqtts://10.1.2.3:8884/", BrokerAddress(useTLS: true, host: "10.1.2.3", port: 8884)),
        ] {
            #expect(try BrokerAddress.parse(text).get() == expected)
        }
    }

    @Test("brokerServers: more brokers after brokerServer, or alone; a repeat is a warning")
    func brokerList() throws {
        let both = try loadConfig(
            minimalConfig.replacingOccurrences(
                of: "1883\n",
                with: "1883\n    brokerServers: [\"mqtts://[::1]:8884\", mqtt://127.0.0.1:1883, mqtt://b.example]\n"))
        #expect(
            both.configuration.messageChannel.mqtt.brokers == [
                BrokerAddress(useTLS: false, host: "127.0.0.1", port: 1883),
                BrokerAddress(useTLS: true, host: "::1", port: 8884),
                BrokerAddress(useTLS: false, host: "b.example", port: 1883),
            ])
        #expect(
            both.warnings.contains {
                $0.path == "messageChannel.mqtt.brokerServers[1]" && $0.message.contains("repeats")
            })
        let alone = try loadConfig(
            minimalConfig.replacingOccurrences(
                of: "    brokerServer: mqtt://127.0.0.1:1883\n",
                with: "    brokerServers:\n      - mqtt://a.example:1\n"))
        #expect(
            alone.configuration.messageChannel.mqtt.brokers == [
                BrokerAddress(useTLS: false, host: "a.example", port: 1)
            ])
        #expect(alone.configuration.messageChannel.mqtt.broker.host == "a.example")
        #expect(alone.warnings.isEmpty, "\(alone.warnings)")
    }

    @Test(
        "UDP apps: udp: sockets, udpIdleTimeout, udpMaxFlows, a range app's protocols; a UDP and a TCP local socket may share a port"
    )
    func udpApps() throws {
        let loaded = try loadConfig(
            minimalConfig + """
                localExposedApps:
                - {appName: dns, appSocket: "udp:[::1]:53", udpIdleTimeout: 30}
                - {appName: r, mode: range, portRange: ["53", "5000-5010"], addressRange: [10.0.0.0/8], protocols: [tcp, udp]}
                - {appName: t, mode: range, portRange: ["22"], addressRange: [10.0.0.1]}
                remoteApps:
                - {siteName: b, appName: dns, localSocket: "udp:127.0.0.1:5353", udpMaxFlows: 64}
                - {siteName: b, appName: r, localSocket: "udp:127.0.0.1:5354", appSocket: "udp:10.0.0.7:53"}
                - {siteName: b, appName: web, localSocket: "tcp:127.0.0.1:5353"}

                """)
        let config = loaded.configuration
        #expect(loaded.warnings.isEmpty, "\(loaded.warnings)")
        #expect(config.localExposedApps[0].mode == .single(.udp(IPAddress("::1")!, port: 53)))
        #expect(config.localExposedApps[0].udpIdleTimeout == .seconds(30))
        #expect(config.localExposedApps[1].protocols == [.tcp, .udp])
        #expect(config.localExposedApps[2].protocols == [.tcp])
        #expect(config.remoteApps[0].localSocket == .udp(IPAddress("127.0.0.1")!, port: 5353))
        #expect(config.remoteApps[0].udpMaxFlows == 64 && config.remoteApps[0].udpIdleTimeout == .seconds(60))
        #expect(config.remoteApps[1].appSocket == .udp(IPAddress("10.0.0.7")!, port: 53))
        // The API's documents carry the keys only when they differ from the defaults.
        #expect(ExposedAppDocument(config.localExposedApps[0]).udpIdleTimeout == 30)
        #expect(ExposedAppDocument(config.localExposedApps[1]).protocols == ["tcp", "udp"])
        #expect(ExposedAppDocument(config.localExposedApps[2]).protocols == nil)
        #expect(RemoteAppDocument(config.remoteApps[0]).udpMaxFlows == 64)
        #expect(RemoteAppDocument(config.remoteApps[1]).udpMaxFlows == nil)
    }

    @Test("a missing brokerServer falls back to wovenet's default, with a warning")
    func defaultBroker() throws {
        let loaded = try loadConfig(
            "siteName: a\ncrypto:\n  key: \"0123456789abcdef\"\nmessageChannel:\n  protocol: mqtt\n")
        #expect(loaded.configuration.messageChannel.mqtt.broker.host == "mqtt.eclipseprojects.io")
        #expect(loaded.warnings.contains { $0.path == "messageChannel.mqtt.brokerServer" })
    }

    @Test("tunnel sockets follow wovenet's defaulting rules")
    func tunnelDefaults() throws {
        let yaml =
            minimalConfig + """
                tunnel:
                  linksPerPath: 2
                  connectTimeout: 3
                  interfaces: [eth0, 10.0.0.2]
                  localSockets:
                  - mode: dedicated-address
                    listenAddress: 192.0.2.10
                    listenPort: 54234
                  - mode: dedicated-address
                    publicAddress: 2001:db8::10
                    publicPort: 443
                  - mode: port-forwarding
                    transportProtocol: TLS
                    publicAddress: autoHttpDetect
                    publicPort: 26726
                    listenPort: 16875
                    httpDetector:
                      url: http://127.0.0.1:8080/ip
                  - mode: port-forwarding
                    publicAddress: autoStunDetect
                    stunServer: stun.example.net
                    publicPort: 3000
                    listenAddress: 127.0.0.1
                    listenPort: 3001

                """
        let tunnel = try loadConfig(yaml).configuration.tunnel
        #expect(tunnel.linksPerPath == 2)
        #expect(tunnel.connectTimeout == 3)
        #expect(tunnel.interfaces == ["eth0", "10.0.0.2"])
        let sockets = tunnel.localSockets
        #expect(sockets.count == 4)
        #expect(sockets[0].publicAddress == .literal(IPAddress("192.0.2.10")!))
        #expect(sockets[0].publicPort == 54234 && sockets[0].listenPort == 54234)
        #expect(sockets[0].transportProtocol == .tls)
        #expect(sockets[1].listenAddress == IPAddress("::")!)
        #expect(sockets[1].listenPort == 443 && sockets[1].publicPort == 443)
        #expect(sockets[2].publicAddress == .autoHttpDetect)
        #expect(sockets[2].listenAddress == IPAddress("0.0.0.0")!)
        #expect(sockets[2].publicPort == 26726 && sockets[2].listenPort == 16875)
        #expect(sockets[2].httpDetectorURL == "http://127.0.0.1:8080/ip")
        #expect(sockets[3].publicAddress == .autoStunDetect)
        #expect(sockets[3].stunServer == "stun.example.net:3478")
        #expect(sockets[3].listenAddress == IPAddress("127.0.0.1")!)
    }

    @Test("transportProtocol quic is accepted without a warning, as a QUIC socket")
    func quicAccepted() throws {
        let yaml =
            minimalConfig + """
                tunnel:
                  localSockets:
                  - mode: dedicated-address
                    transportProtocol: quic
                    listenAddress: 127.0.0.1
                    listenPort: 40000
                  - mode: dedicated-address
                    listenAddress: 127.0.0.1
                    listenPort: 40000

                """
        // The same port number over TCP (tls) and UDP (quic) is no clash.
        let loaded = try loadConfig(yaml)
        #expect(loaded.configuration.tunnel.localSockets[0].transportProtocol == .quic)
        #expect(loaded.warnings.isEmpty, "\(loaded.warnings)")
        #expect(loaded.configuration.tunnel.localSockets[0].transportProtocol.linkType == .quic)
    }

    @Test("websocket sockets: path, publicUrl instead of an address; tunnel proxy, caFile, congestion control, relay")
    func webSocketAndTunnelKeys() throws {
        let yaml =
            minimalConfig + """
                tunnel:
                  proxy: http://corp:pw@10.0.0.1:3128
                  caFile: /dev/null
                  congestionControl: reno
                  relay: true
                  relayLimits:
                    perPair: 4
                    total: 40
                  localSockets:
                  - mode: dedicated-address
                    transportProtocol: websocket
                    listenAddress: 0.0.0.0
                    listenPort: 8080
                    publicUrl: wss://weft.example.com/tunnel
                  - mode: dedicated-address
                    transportProtocol: websocket
                    publicAddress: 198.18.0.7
                    listenPort: 8081
                    path: /w

                """
        let loaded = try loadConfig(yaml)
        let tunnel = loaded.configuration.tunnel
        #expect(tunnel.proxy == LinkProxy(kind: .http, host: "10.0.0.1", port: 3128, username: "corp", password: "pw"))
        #expect(tunnel.caFile == "/dev/null")
        #expect(tunnel.congestionControl == "reno")
        #expect(tunnel.relay && tunnel.relayLimits == TunnelSettings.RelayLimits(perPair: 4, total: 40))
        #expect(tunnel.localSockets[0].transportProtocol == .websocket)
        #expect(tunnel.localSockets[0].publicURL == LinkEndpoint.webSocket(url: "wss://weft.example.com/tunnel"))
        #expect(tunnel.localSockets[0].path == "/weft")
        #expect(tunnel.localSockets[1].path == "/w")
        #expect(tunnel.localSockets[1].publicURL == nil)
        #expect(loaded.warnings.isEmpty, "\(loaded.warnings)")
        // What the site announces: the public URL as written, and a ws:// URL at the public address.
        let monitor = PublicAddressMonitor(sockets: tunnel.localSockets, stunServers: [], logger: .init(label: "t"))
        #expect(
            monitor.literalEndpoints == [
                .init(linkType: .websocket, address: "wss://weft.example.com/tunnel", port: 443),
                .init(linkType: .websocket, address: "ws://198.18.0.7:8081/w", port: 8081),
            ])
    }

    @Test("bluetooth sockets: an adapter by name or address, an RFCOMM channel, announced only once bound")
    func bluetoothSockets() throws {
        let yaml =
            minimalConfig + """
                tunnel:
                  localSockets:
                  - mode: dedicated-address
                    listenAddress: 127.0.0.1
                    listenPort: 3
                  - mode: dedicated-address
                    transportProtocol: bluetooth
                    listenAddress: hci0
                    listenPort: 3
                  - mode: dedicated-address
                    transportProtocol: Bluetooth
                    listenAddress: 00:1a:7d:da:71:13
                    listenPort: 30
                    role: backup

                """
        // Channel 3 beside TCP port 3 is no clash: they are different sockets.
        let loaded = try loadConfig(yaml)
        #expect(loaded.warnings.isEmpty, "\(loaded.warnings)")
        let sockets = loaded.configuration.tunnel.localSockets
        #expect(sockets.map(\.transportProtocol) == [.tls, .bluetooth, .bluetooth])
        #expect(sockets[1].bluetoothAdapter == .index(0) && sockets[1].listenPort == 3)
        #expect(sockets[2].bluetoothAdapter == .address(BluetoothAddress("00:1A:7D:DA:71:13")!))
        #expect(sockets[2].listenPort == 30 && sockets[2].backup)
        #expect(sockets[1].publicAddress == .adapter && sockets[1].transportProtocol.linkType == .bluetooth)
        // Its address is the adapter's, known once bound: nothing is announced for it beforehand.
        let monitor = PublicAddressMonitor(sockets: sockets, stunServers: [], logger: .init(label: "t"))
        #expect(monitor.literalEndpoints == [.init(linkType: .tls, address: "127.0.0.1", port: 3)])
    }

    @Test("usb sockets: a gadget on a named or the first controller, a host side that only dials")
    func usbSockets() throws {
        let yaml =
            minimalConfig + """
                tunnel:
                  localSockets:
                  - mode: usb-gadget
                    transportProtocol: usb
                    listenAddress: dummy_udc.0
                    role: backup
                  - mode: USB-host
                    transportProtocol: USB

                """
        let loaded = try loadConfig(yaml)
        #expect(loaded.warnings.isEmpty, "\(loaded.warnings)")
        let sockets = loaded.configuration.tunnel.localSockets
        #expect(sockets.map(\.mode) == [.usbGadget, .usbHost])
        #expect(sockets.allSatisfy { $0.transportProtocol == .usb && $0.publicAddress == .adapter })
        #expect(sockets[0].usbController == "dummy_udc.0" && sockets[0].backup && sockets[0].listens)
        #expect(sockets[1].usbController == nil && !sockets[1].listens)
        let monitor = PublicAddressMonitor(sockets: sockets, stunServers: [], logger: .init(label: "t"))
        #expect(monitor.literalEndpoints.isEmpty)
    }

    @Test("nat-traversal: a QUIC socket with a listen port and a STUN server (its own or the top-level list)")
    func natTraversal() throws {
        let yaml =
            minimalConfig + """
                stun: ["127.0.0.1:3478"]
                tunnel:
                  localSockets:
                  - mode: nat-traversal
                    transportProtocol: quic
                    listenPort: 4500
                  - mode: nat-traversal
                    transportProtocol: quic
                    listenAddress: 10.0.0.5
                    listenPort: 4501
                    stunServer: 198.18.0.1:3478
                    publicAddress: 198.18.0.9

                """
        let loaded = try loadConfig(yaml)
        let sockets = loaded.configuration.tunnel.localSockets
        #expect(sockets.map(\.mode) == [.natTraversal, .natTraversal])
        #expect(sockets[0].listenAddress == IPAddress("0.0.0.0") && sockets[0].listenPort == 4500)
        #expect(sockets[0].stunServer == nil && loaded.configuration.stun == ["127.0.0.1:3478"])
        #expect(sockets[1].listenAddress == IPAddress("10.0.0.5") && sockets[1].stunServer == "198.18.0.1:3478")
        // A public address means nothing here: said, and ignored.
        #expect(loaded.warnings.contains { "\($0)".contains("ignored — nat-traversal learns its public mapping") })
        #expect(sockets[1].publicAddress == .autoStunDetect)
    }

    @Test("a top-level stun list satisfies autoStunDetect")
    func topLevelStun() throws {
        let yaml =
            minimalConfig + """
                stun: ["127.0.0.1:3478", "stun.example.net"]
                tunnel:
                  localSockets:
                  - mode: port-forwarding
                    publicAddress: autoStunDetect
                    publicPort: 3000
                    listenPort: 3001

                """
        let config = try loadConfig(yaml).configuration
        #expect(config.stun == ["127.0.0.1:3478", "stun.example.net:3478"])
        #expect(config.tunnel.localSockets[0].stunServer == nil)
    }

    @Test("exposed apps: single TCP, IPv6, Unix, and range")
    func exposedApps() throws {
        let yaml =
            minimalConfig + """
                localExposedApps:
                - appSocket: tcp:192.168.122.80:8080
                  appName: web
                - appSocket: tcp:[::1]:22
                  appName: ssh
                  mode: single
                - appSocket: UNIX:/var/run/docker.sock
                  appName: docker
                - appName: vdi
                  mode: range
                  portRange: [5900, "5901-5990"]
                  addressRange: [10.0.0.6, 10.0.2.0/24, "::1", "fd00::/8"]

                """
        let apps = try loadConfig(yaml).configuration.localExposedApps
        #expect(apps.map(\.appName) == ["web", "ssh", "docker", "vdi"])
        #expect(apps[0].mode == .single(.tcp(IPAddress("192.168.122.80")!, port: 8080)))
        #expect(apps[1].mode == .single(.tcp(IPAddress("::1")!, port: 22)))
        #expect(apps[2].mode == .single(.unix(path: "/var/run/docker.sock")))
        guard case .range(let ports, let addresses) = apps[3].mode else {
            Issue.record("vdi is not a range app")
            return
        }
        #expect(ports == [5900...5900, 5901...5990])
        #expect(addresses.count == 4)
        let vdi = apps[3]
        #expect(vdi.allows(IPAddress("10.0.2.77")!, port: 5950))
        #expect(vdi.allows(IPAddress("::ffff:10.0.2.77")!, port: 5900))
        #expect(!vdi.allows(IPAddress("10.0.3.1")!, port: 5900))
        #expect(!vdi.allows(IPAddress("10.0.2.77")!, port: 5991))
        #expect(vdi.allows(IPAddress("fd12::1")!, port: 5900))
        #expect(!apps[0].allows(IPAddress("192.168.122.80")!, port: 8080))
    }

    @Test("remote apps: TCP and Unix local sockets, range targets")
    func remoteApps() throws {
        let yaml =
            minimalConfig + """
                remoteApps:
                - siteName: site02
                  appName: web
                  localSocket: tcp:127.0.0.1:28080
                - siteName: site02
                  appName: docker
                  localSocket: unix:/tmp/weft/docker.sock
                - siteName: site03
                  appName: vdi
                  appSocket: tcp:10.0.2.123:25900
                  localSocket: tcp:[::1]:5900

                """
        let apps = try loadConfig(yaml).configuration.remoteApps
        #expect(
            apps == [
                RemoteAppConfig(
                    siteName: "site02", appName: "web", localSocket: .tcp(IPAddress("127.0.0.1")!, port: 28080)),
                RemoteAppConfig(
                    siteName: "site02", appName: "docker", localSocket: .unix(path: "/tmp/weft/docker.sock")),
                RemoteAppConfig(
                    siteName: "site03",
                    appName: "vdi",
                    localSocket: .tcp(IPAddress("::1")!, port: 5900),
                    appSocket: .tcp(IPAddress("10.0.2.123")!, port: 25900)
                ),
            ]
        )
    }

    @Test("restfulApi with TLS paths, auth and its own log file")
    func restfulAPI() throws {
        let yaml =
            minimalConfig + """
                restfulApi:
                  enabled: true
                  listenAddr: 0.0.0.0:18081
                  logger:
                    file: api.log
                  tls:
                    enabled: false
                    key: tls/api.key
                    cert: ~/api.crt
                  auth:
                    basicAuth:
                    - user: admin
                      password: "N0tSecure-Ch@ngeMe"

                """
        let loaded = try loadConfig(yaml)
        let api = loaded.configuration.restfulApi
        #expect(api.enabled && api.listenHost == "0.0.0.0" && api.listenPort == 18081)
        #expect(api.logFile == "/etc/weft/api.log")
        #expect(api.tlsKeyFile == "/etc/weft/tls/api.key")
        #expect(api.tlsCertFile == "/home/tester/api.crt")
        #expect(api.basicAuth == [.init(user: "admin", password: "N0tSecure-Ch@ngeMe")])
        #expect(loaded.warnings.isEmpty)
    }

    @Test("an open API on a public address is a warning")
    func openAPIWarns() throws {
        let loaded = try loadConfig(minimalConfig + "restfulApi:\n  enabled: yes\n  listenAddr: \":18080\"\n")
        #expect(loaded.configuration.restfulApi.listenHost == "0.0.0.0")
        #expect(loaded.warnings.contains { $0.path == "restfulApi.auth" })
    }

    @Test("stateDir: ~ and relative paths")
    func stateDirPaths() throws {
        #expect(
            try loadConfig(minimalConfig + "stateDir: ~/sites/a\n").configuration.stateDir == "/home/tester/sites/a")
        #expect(try loadConfig(minimalConfig + "stateDir: state/a\n").configuration.stateDir == "/etc/weft/state/a")
        #expect(try loadConfig(minimalConfig + "stateDir: /var/lib/weft\n").configuration.stateDir == "/var/lib/weft")
    }

    @Test("keys match case-insensitively, as viper did")
    func lowerCaseKeys() throws {
        let yaml = """
            sitename: site01
            CRYPTO:
              KEY: "0123456789abcdef"
            messagechannel:
              mqtt:
                brokerserver: mqtt://127.0.0.1:1883
            localexposedapps:
            - appname: web
              appsocket: tcp:127.0.0.1:8080
            remoteapps:
            - sitename: site02
              appname: web
              localsocket: tcp:127.0.0.1:28080
            restfulapi:
              listenaddr: 127.0.0.1:1

            """
        let loaded = try loadConfig(yaml)
        #expect(loaded.configuration.siteName == "site01")
        #expect(loaded.configuration.localExposedApps.first?.appName == "web")
        #expect(loaded.configuration.remoteApps.first?.localSocket == .tcp(IPAddress("127.0.0.1")!, port: 28080))
        #expect(loaded.configuration.restfulApi.listenPort == 1)
        #expect(loaded.warnings.isEmpty)
    }

    @Test("flow-style YAML works like block style")
    func flowStyle() throws {
        let yaml = """
            {siteName: site01, crypto: {key: "0123456789abcdef"},
             messageChannel: {protocol: mqtt, mqtt: {brokerServer: "mqtt://127.0.0.1:1883", topic: t/1}},
             localExposedApps: [{appName: web, appSocket: "tcp:127.0.0.1:80"},
                                {appName: r, mode: range, portRange: ["1-1024"], addressRange: [127.0.0.0/8]}],
             remoteApps: [{siteName: b, appName: web, localSocket: "unix:/tmp/w.sock"}]}
            """
        let config = try loadConfig(yaml).configuration
        #expect(config.messageChannel.mqtt.topic == "t/1")
        #expect(config.localExposedApps.count == 2)
        #expect(config.remoteApps.count == 1)
    }

    @Test("anchors and merge keys")
    func anchors() throws {
        let yaml =
            minimalConfig + """
                remoteApps:
                - &web {siteName: site02, appName: web, localSocket: "tcp:127.0.0.1:9001"}
                - <<: *web
                  localSocket: tcp:127.0.0.1:9002

                """
        let apps = try loadConfig(yaml).configuration.remoteApps
        #expect(
            apps.map(\.localSocket) == [
                .tcp(IPAddress("127.0.0.1")!, port: 9001), .tcp(IPAddress("127.0.0.1")!, port: 9002),
            ])
        #expect(apps.allSatisfy { $0.siteName == "site02" })
    }

    @Test("unknown keys are warnings with a suggestion")
    func unknownKeys() throws {
        let yaml =
            minimalConfig
            + "siteNmae: x\nlocalExposedApps:\n- appName: web\n  appSockt: tcp:127.0.0.1:80\n  appSocket: tcp:127.0.0.1:80\nfrobnicate: 1\n"
        let loaded = try loadConfig(yaml)
        let messages = loaded.warnings.map(\.description)
        #expect(messages.contains("config.yaml:7:1: warning: siteNmae: unknown key, ignored — did you mean siteName?"))
        #expect(
            messages.contains(
                "config.yaml:10:3: warning: localExposedApps[0].appSockt: unknown key, ignored — did you mean appSocket?"
            )
        )
        #expect(messages.contains("config.yaml:12:1: warning: frobnicate: unknown key, ignored"))
    }

    @Test("the key never appears in a description")
    func keyHidden() throws {
        let config = try loadConfig(minimalConfig).configuration
        #expect(!String(describing: config).contains("0123456789abcdef"))
    }
}
