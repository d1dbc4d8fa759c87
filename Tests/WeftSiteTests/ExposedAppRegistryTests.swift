import Testing
import WeftSite
import WeftWire

@Suite("exposed apps: what a peer's stream may reach", .timeLimit(.minutes(10)))
struct ExposedAppRegistryTests {
    let registry = ExposedAppRegistry([
        ExposedAppConfig(appName: "web", mode: .single(.tcp(IPAddress("127.0.0.1")!, port: 8080))),
        ExposedAppConfig(appName: "docker", mode: .single(.unix(path: "/run/docker.sock"))),
        ExposedAppConfig(
            appName: "vdi",
            mode: .range(ports: [5900...5910], addresses: [IPNetwork("10.0.2.0/24")!, IPNetwork("fd00::/8")!])),
    ])

    func refusal(_ appName: String, _ target: String?) -> StreamReset.Code? {
        if case .refuse(let code, _) = registry.resolve(appName: appName, target: target, peer: "peer") { return code }
        return nil
    }

    @Test("single apps connect to their socket, whatever target the client names")
    func single() {
        #expect(
            registry.resolve(appName: "web", target: nil, peer: "peer")
                == .connect(.tcp(IPAddress("127.0.0.1")!, port: 8080)))
        #expect(
            registry.resolve(appName: "web", target: "tcp:10.9.9.9:22", peer: "peer")
                == .connect(.tcp(IPAddress("127.0.0.1")!, port: 8080)))
        #expect(
            registry.resolve(appName: "docker", target: nil, peer: "peer") == .connect(.unix(path: "/run/docker.sock")))
    }

    @Test("allowedSites: listed sites connect, every other site is refused as not allowed")
    func allowList() {
        let registry = ExposedAppRegistry([
            ExposedAppConfig(
                appName: "db", mode: .single(.tcp(IPAddress("127.0.0.1")!, port: 5432)), allowedSites: ["ops", "web"])
        ])
        #expect(
            registry.resolve(appName: "db", target: nil, peer: "ops")
                == .connect(.tcp(IPAddress("127.0.0.1")!, port: 5432)))
        guard case .refuse(let code, let reason) = registry.resolve(appName: "db", target: nil, peer: "guest") else {
            Issue.record("guest was let in")
            return
        }
        #expect(code == .notAllowed && reason.contains("guest"))
        // Names match exactly.
        if case .connect = registry.resolve(appName: "db", target: nil, peer: "Ops") { Issue.record("Ops was let in") }
    }

    @Test("an app that is not exposed is refused as such")
    func notExposed() {
        #expect(refusal("ssh", nil) == .notExposed)
        #expect(refusal("", nil) == .notExposed)
        #expect(refusal("WEB", nil) == .notExposed)
    }

    @Test("range apps: inside connects, in IPv4 form; everything else is refused")
    func range() {
        #expect(
            registry.resolve(appName: "vdi", target: "tcp:10.0.2.7:5901", peer: "peer")
                == .connect(.tcp(IPAddress("10.0.2.7")!, port: 5901)))
        #expect(
            registry.resolve(appName: "vdi", target: "tcp:[::ffff:10.0.2.7]:5901", peer: "peer")
                == .connect(.tcp(IPAddress("10.0.2.7")!, port: 5901)))
        #expect(
            registry.resolve(appName: "vdi", target: "tcp:[fd00::5]:5900", peer: "peer")
                == .connect(.tcp(IPAddress("fd00::5")!, port: 5900)))
        for target in [
            "tcp:10.0.3.7:5901",  // address outside
            "tcp:10.0.2.7:22",  // port outside
            "tcp:[::ffff:10.0.3.7]:5901",  // IPv4-mapped form of an outside address
            "tcp:[::ffff:a00:307]:5901",  // the same, written in hex
            "tcp:localhost:5901",  // a host name
            "tcp:vdi.internal:5901",
            "tcp:0x0a000207:5901",  // numeric tricks are not IP literals
            "tcp:10.0.2.7:0",
            "tcp:10.0.2.7:65536",
            "unix:/run/docker.sock",  // not TCP
            "udp:10.0.2.7:5901",
            "",
        ] {
            #expect(refusal("vdi", target) == .targetOutOfRange, "\(target)")
        }
        #expect(refusal("vdi", nil) == .targetOutOfRange)
    }

    @Test("UDP apps take only UDP clients, TCP apps only TCP ones; range apps take UDP targets only when they list udp")
    func datagrams() {
        let registry = ExposedAppRegistry([
            ExposedAppConfig(appName: "dns", mode: .single(.udp(IPAddress("127.0.0.1")!, port: 53))),
            ExposedAppConfig(appName: "web", mode: .single(.tcp(IPAddress("127.0.0.1")!, port: 8080))),
            ExposedAppConfig(
                appName: "both", mode: .range(ports: [53...53], addresses: [IPNetwork("10.0.0.0/8")!]),
                protocols: [.tcp, .udp]),
            ExposedAppConfig(
                appName: "tcpOnly", mode: .range(ports: [53...53], addresses: [IPNetwork("10.0.0.0/8")!])),
            ExposedAppConfig(
                appName: "udpOnly", mode: .range(ports: [53...53], addresses: [IPNetwork("10.0.0.0/8")!]),
                protocols: [.udp]),
        ])
        func code(_ app: String, _ target: String?, datagrams: Bool) -> StreamReset.Code? {
            if case .refuse(let code, _) = registry.resolve(
                appName: app, target: target, peer: "peer", datagrams: datagrams)
            {
                return code
            }
            return nil
        }
        #expect(
            registry.resolve(appName: "dns", target: nil, peer: "peer", datagrams: true)
                == .connect(.udp(IPAddress("127.0.0.1")!, port: 53)))
        #expect(code("dns", nil, datagrams: false) == .notExposed)
        #expect(code("web", nil, datagrams: true) == .notExposed)
        #expect(
            registry.resolve(appName: "both", target: "udp:10.1.2.3:53", peer: "peer", datagrams: true)
                == .connect(.udp(IPAddress("10.1.2.3")!, port: 53)))
        #expect(
            registry.resolve(appName: "both", target: "udp:[::ffff:10.1.2.3]:53", peer: "peer", datagrams: true)
                == .connect(.udp(IPAddress("10.1.2.3")!, port: 53)))
        #expect(
            registry.resolve(appName: "both", target: "tcp:10.1.2.3:53", peer: "peer", datagrams: false)
                == .connect(.tcp(IPAddress("10.1.2.3")!, port: 53)))
        // The target's scheme must match what the stream carries.
        #expect(code("both", "tcp:10.1.2.3:53", datagrams: true) == .targetOutOfRange)
        #expect(code("both", "udp:10.1.2.3:53", datagrams: false) == .targetOutOfRange)
        #expect(code("tcpOnly", "udp:10.1.2.3:53", datagrams: true) == .targetOutOfRange)
        #expect(code("udpOnly", "tcp:10.1.2.3:53", datagrams: false) == .targetOutOfRange)
        // Outside the ranges, whatever the protocol.
        #expect(code("udpOnly", "udp:11.1.2.3:53", datagrams: true) == .targetOutOfRange)
        #expect(code("udpOnly", "udp:10.1.2.3:54", datagrams: true) == .targetOutOfRange)
    }
}
