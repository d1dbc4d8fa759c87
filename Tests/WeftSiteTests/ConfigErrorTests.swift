import Testing

@testable import WeftSite

@Suite("config: invalid files name the line, the key path and what was expected", .timeLimit(.minutes(10)))
struct ConfigErrorTests {
    /// One invalid file and the error it must produce.
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var yaml: String
        var path: String
        var line: Int
        var fragment: String
        var testDescription: String { name }
    }

    static let header = minimalConfig  // 6 lines plus a blank one; appended text starts at line 7

    static let cases: [Case] = [
        Case(
            name: "siteName missing",
            yaml:
                "crypto:\n  key: \"0123456789abcdef\"\nmessageChannel:\n  mqtt:\n    brokerServer: mqtt://127.0.0.1:1\n",
            path: "siteName",
            line: 1,
            fragment: "missing — required"
        ),
        Case(
            name: "siteName too long",
            yaml: minimalConfig.replacingOccurrences(
                of: "siteName: site01", with: "siteName: " + String(repeating: "s", count: 256)),
            path: "siteName",
            line: 1,
            fragment: "256 bytes long — the limit is 255"
        ),
        Case(
            name: "siteName a mapping",
            yaml: minimalConfig.replacingOccurrences(of: "siteName: site01", with: "siteName: {a: 1}"),
            path: "siteName",
            line: 1,
            fragment: "expected a single value, found a mapping"
        ),
        Case(
            name: "key too short",
            yaml: minimalConfig.replacingOccurrences(of: "\"0123456789abcdef\"", with: "short"),
            path: "crypto.key",
            line: 3,
            fragment: "is 5 bytes long — expected 8 to 255 bytes"
        ),
        Case(
            name: "key too long",
            yaml: minimalConfig.replacingOccurrences(
                of: "\"0123456789abcdef\"", with: String(repeating: "k", count: 256)),
            path: "crypto.key",
            line: 3,
            fragment: "256 bytes long"
        ),
        Case(
            name: "crypto.trust unknown",
            yaml: minimalConfig.replacingOccurrences(
                of: "\"0123456789abcdef\"", with: "\"0123456789abcdef\"\n  trust: everyone"),
            path: "crypto.trust",
            line: 4,
            fragment: "expected one of first-use, pinned"
        ),
        Case(
            name: "crypto.pinnedSites with a bad fingerprint",
            yaml: minimalConfig.replacingOccurrences(
                of: "\"0123456789abcdef\"",
                with: "\"0123456789abcdef\"\n  pinnedSites:\n  - siteName: beta\n    fingerprint: sha256:12"),
            path: "crypto.pinnedSites[0].fingerprint",
            line: 6,
            fragment: "expected sha256: and 64 hex digits"
        ),
        Case(
            name: "crypto.pinnedSites: one identity for two names",
            yaml: minimalConfig.replacingOccurrences(
                of: "\"0123456789abcdef\"",
                with:
                    "\"0123456789abcdef\"\n  pinnedSites:\n  - siteName: beta\n    fingerprint: sha256:abababababababababababababababababababababababababababababababab\n"
                    + "  - siteName: gamma\n    fingerprint: sha256:abababababababababababababababababababababababababababababababab"
            ),
            path: "crypto.pinnedSites[1]",
            line: 7,
            fragment: "already pinned for \"beta\": one identity speaks for one site"
        ),
        Case(
            name: "crypto missing",
            yaml: "siteName: a\nmessageChannel:\n  mqtt:\n    brokerServer: mqtt://127.0.0.1:1\n",
            path: "crypto",
            line: 1,
            fragment: "missing"
        ),
        Case(
            name: "messageChannel missing",
            yaml: "siteName: a\ncrypto:\n  key: \"0123456789abcdef\"\n",
            path: "messageChannel",
            line: 1,
            fragment: "missing"
        ),
        Case(
            name: "bad log level",
            yaml: header + "logger:\n  level: LOUD\n",
            path: "logger.level",
            line: 8,
            fragment: "\"LOUD\" — expected DEBUG, INFO, WARN or ERROR"
        ),
        Case(
            name: "bad log format",
            yaml: header + "logger:\n  format: xml\n",
            path: "logger.format",
            line: 8,
            fragment: "expected text or json"
        ),
        Case(
            name: "other message protocol",
            yaml: header.replacingOccurrences(of: "  mqtt:\n", with: "  protocol: amqp\n  mqtt:\n"),
            path: "messageChannel.protocol",
            line: 5,
            fragment: "\"amqp\" — expected mqtt"
        ),
        Case(
            name: "broker scheme",
            yaml: header.replacingOccurrences(of: "mqtt://127.0.0.1:1883", with: "tcp://127.0.0.1:1883"),
            path: "messageChannel.mqtt.brokerServer",
            line: 6,
            fragment: "expected mqtt://HOST:PORT or mqtts://HOST:PORT"
        ),
        Case(
            name: "broker port",
            yaml: header.replacingOccurrences(of: "mqtt://127.0.0.1:1883", with: "mqtt://127.0.0.1:70000"),
            path: "messageChannel.mqtt.brokerServer",
            line: 6,
            fragment: "is not a port"
        ),
        Case(
            name: "a bad broker in brokerServers",
            yaml: header.replacingOccurrences(
                of: "1883\n", with: "1883\n    brokerServers:\n      - mqtt://127.0.0.2\n      - http://x\n"),
            path: "messageChannel.mqtt.brokerServers[1]",
            line: 9,
            fragment: "expected mqtt://HOST:PORT or mqtts://HOST:PORT"
        ),
        Case(
            name: "too many brokers",
            yaml: header.replacingOccurrences(
                of: "1883\n",
                with: "1883\n    brokerServers: ["
                    + (2...9).map { "mqtt://127.0.0.\($0)" }.joined(separator: ", ") + "]\n"),
            path: "messageChannel.mqtt.brokerServers",
            line: 6,
            fragment: "names 9 brokers, the limit is 8"
        ),
        Case(
            name: "password without user",
            yaml: header.replacingOccurrences(of: "1883\n", with: "1883\n    password: x\n"),
            path: "messageChannel.mqtt.username",
            line: 6,
            fragment: "a password needs a username"
        ),
        Case(
            name: "unreadable caFile",
            yaml: header.replacingOccurrences(
                of: "mqtt://127.0.0.1:1883\n",
                with: "mqtts://127.0.0.1:8883\n    caFile: /nonexistent/ca.pem\n"
            ),
            path: "messageChannel.mqtt.caFile",
            line: 7,
            fragment: "no readable file at /nonexistent/ca.pem"
        ),
        Case(
            name: "socket mode",
            yaml: header
                + "tunnel:\n  localSockets:\n  - mode: upnp\n    listenAddress: 127.0.0.1\n    listenPort: 1\n",
            path: "tunnel.localSockets[0].mode",
            line: 9,
            fragment: "\"upnp\" — expected dedicated-address, port-forwarding, nat-traversal, usb-gadget or usb-host"
        ),
        .init(
            name: "nat-traversal over TLS",
            yaml: header
                + "tunnel:\n  localSockets:\n  - mode: nat-traversal\n    listenPort: 4500\n    stunServer: 127.0.0.1:3478\n",
            path: "tunnel.localSockets[0].transportProtocol",
            line: 9,
            fragment: "nat-traversal needs transportProtocol: quic"
        ),
        .init(
            name: "nat-traversal without a STUN server",
            yaml: header
                + "tunnel:\n  localSockets:\n  - mode: nat-traversal\n    transportProtocol: quic\n    listenPort: 4500\n",
            path: "tunnel.localSockets[0].stunServer",
            line: 9,
            fragment: "nat-traversal needs stunServer (or a top-level stun list)"
        ),
        Case(
            name: "socket mode missing",
            yaml: header + "tunnel:\n  localSockets:\n  - listenAddress: 127.0.0.1\n    listenPort: 1\n",
            path: "tunnel.localSockets[0].mode",
            line: 9,
            fragment: "missing — required"
        ),
        Case(
            name: "transport protocol",
            yaml: header
                + "tunnel:\n  localSockets:\n  - mode: dedicated-address\n    transportProtocol: sctp\n    listenAddress: 127.0.0.1\n    listenPort: 1\n",
            path: "tunnel.localSockets[0].transportProtocol",
            line: 10,
            fragment: "expected tls, quic, websocket, bluetooth or usb"
        ),
        Case(
            name: "dedicated-address without any address",
            yaml: header + "tunnel:\n  localSockets:\n  - mode: dedicated-address\n    listenPort: 1\n",
            path: "tunnel.localSockets[0].publicAddress",
            line: 9,
            fragment: "dedicated-address needs publicAddress or listenAddress"
        ),
        Case(
            name: "dedicated-address without any port",
            yaml: header + "tunnel:\n  localSockets:\n  - mode: dedicated-address\n    listenAddress: 127.0.0.1\n",
            path: "tunnel.localSockets[0].listenPort",
            line: 9,
            fragment: "dedicated-address needs listenPort or publicPort"
        ),
        Case(
            name: "dedicated-address with different ports",
            yaml: header
                + "tunnel:\n  localSockets:\n  - mode: dedicated-address\n    listenAddress: 127.0.0.1\n    listenPort: 1\n    publicPort: 2\n",
            path: "tunnel.localSockets[0].publicPort",
            line: 12,
            fragment: "must be equal"
        ),
        Case(
            name: "dedicated-address announcing a wildcard",
            yaml: header
                + "tunnel:\n  localSockets:\n  - mode: dedicated-address\n    listenAddress: 0.0.0.0\n    listenPort: 1\n",
            path: "tunnel.localSockets[0].publicAddress",
            line: 9,
            fragment: "cannot be announced"
        ),
        Case(
            name: "port-forwarding without publicPort",
            yaml: header
                + "tunnel:\n  localSockets:\n  - mode: port-forwarding\n    publicAddress: 192.0.2.1\n    listenPort: 1\n",
            path: "tunnel.localSockets[0].publicPort",
            line: 9,
            fragment: "port-forwarding needs publicPort"
        ),
        Case(
            name: "public address a host name",
            yaml: header
                + "tunnel:\n  localSockets:\n  - mode: port-forwarding\n    publicAddress: example.com\n    publicPort: 1\n    listenPort: 1\n",
            path: "tunnel.localSockets[0].publicAddress",
            line: 10,
            fragment: "expected an IP address, autoHttpDetect or autoStunDetect"
        ),
        Case(
            name: "listen address not an IP",
            yaml: header
                + "tunnel:\n  localSockets:\n  - mode: dedicated-address\n    listenAddress: eth0\n    publicAddress: 192.0.2.1\n    listenPort: 1\n",
            path: "tunnel.localSockets[0].listenAddress",
            line: 10,
            fragment: "\"eth0\" — expected an IP address"
        ),
        Case(
            name: "listen port out of range",
            yaml: header
                + "tunnel:\n  localSockets:\n  - mode: dedicated-address\n    listenAddress: 127.0.0.1\n    listenPort: 65536\n",
            path: "tunnel.localSockets[0].listenPort",
            line: 11,
            fragment: "\"65536\" — expected a port from 1 to 65535"
        ),
        Case(
            name: "autoHttpDetect without url",
            yaml: header
                + "tunnel:\n  localSockets:\n  - mode: port-forwarding\n    publicAddress: autoHttpDetect\n    publicPort: 1\n    listenPort: 1\n",
            path: "tunnel.localSockets[0].httpDetector.url",
            line: 9,
            fragment: "autoHttpDetect needs httpDetector.url"
        ),
        Case(
            name: "httpDetector url not http",
            yaml: header
                + "tunnel:\n  localSockets:\n  - mode: port-forwarding\n    publicAddress: autoHttpDetect\n    publicPort: 1\n    listenPort: 1\n    httpDetector:\n      url: ftp://x/ip\n",
            path: "tunnel.localSockets[0].httpDetector.url",
            line: 14,
            fragment: "expected an http:// or https:// URL"
        ),
        Case(
            name: "autoStunDetect without server",
            yaml: header
                + "tunnel:\n  localSockets:\n  - mode: port-forwarding\n    publicAddress: autoStunDetect\n    publicPort: 1\n    listenPort: 1\n",
            path: "tunnel.localSockets[0].stunServer",
            line: 9,
            fragment: "autoStunDetect needs stunServer"
        ),
        Case(
            name: "linksPerPath out of range",
            yaml: header + "tunnel:\n  linksPerPath: 0\n",
            path: "tunnel.linksPerPath",
            line: 8,
            fragment: "expected 1 to 16"
        ),
        Case(
            name: "connectTimeout out of range",
            yaml: header + "tunnel:\n  connectTimeout: 0\n",
            path: "tunnel.connectTimeout",
            line: 8,
            fragment: "expected 1 to 300 seconds"
        ),
        Case(
            name: "localSockets not a list",
            yaml: header + "tunnel:\n  localSockets: 5\n",
            path: "tunnel.localSockets",
            line: 8,
            fragment: "expected a list"
        ),
        Case(
            name: "proxyProtocol not v1 or v2",
            yaml: header + "localExposedApps:\n- appName: web\n  appSocket: tcp:127.0.0.1:80\n  proxyProtocol: v3\n",
            path: "localExposedApps[0].proxyProtocol",
            line: 10,
            fragment: "expected v1 or v2"
        ),
        Case(
            name: "app socket udp",
            yaml: header + "localExposedApps:\n- appName: web\n  appSocket: sctp:10.0.0.1:80\n",
            path: "localExposedApps[0].appSocket",
            line: 9,
            fragment: "\"sctp:10.0.0.1:80\" — expected tcp:IP:PORT, tcp:[IPv6]:PORT, udp:IP:PORT or unix:/path"
        ),
        Case(
            name: "app socket host name",
            yaml: header + "localExposedApps:\n- appName: web\n  appSocket: tcp:localhost:80\n",
            path: "localExposedApps[0].appSocket",
            line: 9,
            fragment: "is not an IP address"
        ),
        Case(
            name: "app socket IPv6 without brackets",
            yaml: header + "localExposedApps:\n- appName: web\n  appSocket: tcp:::1:80\n",
            path: "localExposedApps[0].appSocket",
            line: 9,
            fragment: "IPv6 addresses need brackets"
        ),
        Case(
            name: "app socket port zero",
            yaml: header + "localExposedApps:\n- appName: web\n  appSocket: tcp:127.0.0.1:0\n",
            path: "localExposedApps[0].appSocket",
            line: 9,
            fragment: "is not a port"
        ),
        Case(
            name: "app socket unix path too long",
            yaml: header + "localExposedApps:\n- appName: web\n  appSocket: unix:/" + String(repeating: "p", count: 120)
                + "\n",
            path: "localExposedApps[0].appSocket",
            line: 9,
            fragment: "the limit is 107"
        ),
        Case(
            name: "app socket missing",
            yaml: header + "localExposedApps:\n- appName: web\n",
            path: "localExposedApps[0].appSocket",
            line: 8,
            fragment: "missing — required"
        ),
        Case(
            name: "app name missing",
            yaml: header + "localExposedApps:\n- appSocket: tcp:127.0.0.1:80\n",
            path: "localExposedApps[0].appName",
            line: 8,
            fragment: "missing — required"
        ),
        Case(
            name: "app name duplicate",
            yaml: header
                + "localExposedApps:\n- appName: web\n  appSocket: tcp:127.0.0.1:80\n- appName: web\n  appSocket: tcp:127.0.0.1:81\n",
            path: "localExposedApps[1].appName",
            line: 10,
            fragment: "duplicate appName (first at line 8)"
        ),
        Case(
            name: "app mode",
            yaml: header + "localExposedApps:\n- appName: web\n  mode: multi\n  appSocket: tcp:127.0.0.1:80\n",
            path: "localExposedApps[0].mode",
            line: 9,
            fragment: "expected single or range"
        ),
        Case(
            name: "range without portRange",
            yaml: header + "localExposedApps:\n- appName: vdi\n  mode: range\n  addressRange: [10.0.0.1]\n",
            path: "localExposedApps[0].portRange",
            line: 8,
            fragment: "range apps need portRange"
        ),
        Case(
            name: "range without addressRange",
            yaml: header + "localExposedApps:\n- appName: vdi\n  mode: range\n  portRange: [22]\n",
            path: "localExposedApps[0].addressRange",
            line: 8,
            fragment: "range apps need addressRange"
        ),
        Case(
            name: "port range reversed",
            yaml: header
                + "localExposedApps:\n- appName: vdi\n  mode: range\n  portRange:\n  - 22\n  - 6000-5000\n  addressRange: [10.0.0.1]\n",
            path: "localExposedApps[0].portRange[1]",
            line: 12,
            fragment: "the range ends before it starts"
        ),
        Case(
            name: "port range not a number",
            yaml: header
                + "localExposedApps:\n- appName: vdi\n  mode: range\n  portRange: [ssh]\n  addressRange: [10.0.0.1]\n",
            path: "localExposedApps[0].portRange[0]",
            line: 10,
            fragment: "expected a port N or a range N-M"
        ),
        Case(
            name: "address range host bits",
            yaml: header
                + "localExposedApps:\n- appName: vdi\n  mode: range\n  portRange: [22]\n  addressRange:\n  - 10.0.2.7/24\n",
            path: "localExposedApps[0].addressRange[0]",
            line: 12,
            fragment: "host bits are set"
        ),
        Case(
            name: "address range host name",
            yaml: header
                + "localExposedApps:\n- appName: vdi\n  mode: range\n  portRange: [22]\n  addressRange: [intranet.local]\n",
            path: "localExposedApps[0].addressRange[0]",
            line: 11,
            fragment: "no host names"
        ),
        Case(
            name: "address range prefix too long",
            yaml: header
                + "localExposedApps:\n- appName: vdi\n  mode: range\n  portRange: [22]\n  addressRange: [10.0.0.0/33]\n",
            path: "localExposedApps[0].addressRange[0]",
            line: 11,
            fragment: "prefix is out of range"
        ),
        Case(
            name: "remote app missing localSocket",
            yaml: header + "remoteApps:\n- siteName: b\n  appName: web\n",
            path: "remoteApps[0].localSocket",
            line: 8,
            fragment: "missing — required"
        ),
        Case(
            name: "remote app missing siteName",
            yaml: header + "remoteApps:\n- appName: web\n  localSocket: tcp:127.0.0.1:1\n",
            path: "remoteApps[0].siteName",
            line: 8,
            fragment: "missing — required"
        ),
        Case(
            name: "remote app on this site",
            yaml: header + "remoteApps:\n- siteName: site01\n  appName: web\n  localSocket: tcp:127.0.0.1:1\n",
            path: "remoteApps[0].siteName",
            line: 8,
            fragment: "this site's own name"
        ),
        Case(
            name: "remote app bad local socket",
            yaml: header + "remoteApps:\n- siteName: b\n  appName: web\n  localSocket: tcp:127.0.0.1\n",
            path: "remoteApps[0].localSocket",
            line: 10,
            fragment: "\"tcp:127.0.0.1\" — "
        ),
        Case(
            name: "remote app unix target",
            yaml: header
                + "remoteApps:\n- siteName: b\n  appName: vdi\n  localSocket: tcp:127.0.0.1:1\n  appSocket: unix:/x\n",
            path: "remoteApps[0].appSocket",
            line: 11,
            fragment: "range apps take TCP or UDP targets"
        ),
        Case(
            name: "a udp: local socket with a tcp: target",
            yaml: header
                + "remoteApps:\n- siteName: b\n  appName: dns\n  localSocket: udp:127.0.0.1:1\n  appSocket: tcp:10.0.0.1:53\n",
            path: "remoteApps[0].appSocket",
            line: 11,
            fragment: "a udp: local socket needs a udp: target"
        ),
        Case(
            name: "udpMaxFlows out of range",
            yaml: header
                + "remoteApps:\n- siteName: b\n  appName: dns\n  localSocket: udp:127.0.0.1:1\n  udpMaxFlows: 0\n",
            path: "remoteApps[0].udpMaxFlows",
            line: 11,
            fragment: "0 — expected 1 to 65536 client addresses at once"
        ),
        Case(
            name: "udpIdleTimeout out of range",
            yaml: header + "localExposedApps:\n- appName: dns\n  appSocket: udp:127.0.0.1:53\n  udpIdleTimeout: 0\n",
            path: "localExposedApps[0].udpIdleTimeout",
            line: 10,
            fragment: "0 — expected 1 to 86400 seconds"
        ),
        Case(
            name: "a range app's unknown protocol",
            yaml: header
                + "localExposedApps:\n- appName: r\n  mode: range\n  portRange: [\"53\"]\n  addressRange: [10.0.0.1]\n"
                + "  protocols: [udp, sctp]\n",
            path: "localExposedApps[0].protocols[1]",
            line: 12,
            fragment: "expected tcp or udp"
        ),
        Case(
            name: "PROXY protocol on a UDP app",
            yaml: header + "localExposedApps:\n- appName: dns\n  appSocket: udp:127.0.0.1:53\n  proxyProtocol: v1\n",
            path: "localExposedApps[0].proxyProtocol",
            line: 10,
            fragment: "applies to TCP and Unix apps only"
        ),
        Case(
            name: "two remote apps on one port",
            yaml: header
                + "remoteApps:\n- siteName: b\n  appName: a\n  localSocket: tcp:127.0.0.1:7000\n- siteName: b\n  appName: c\n  localSocket: tcp:0.0.0.0:7000\n",
            path: "remoteApps[1].localSocket",
            line: 11,
            fragment: "already uses"
        ),
        Case(
            name: "tunnel and API on one port",
            yaml: header
                + "tunnel:\n  localSockets:\n  - {mode: dedicated-address, listenAddress: 127.0.0.1, listenPort: 18080}\nrestfulApi:\n  enabled: true\n",
            path: "restfulApi.listenAddr",
            line: 11,
            fragment: "tunnel.localSockets[0] already uses"
        ),
        Case(
            name: "two quic sockets on one UDP port",
            yaml: header
                + "tunnel:\n  localSockets:\n  - {mode: dedicated-address, transportProtocol: quic, listenAddress: 127.0.0.1, listenPort: 4433}\n  - {mode: dedicated-address, transportProtocol: quic, listenAddress: 127.0.0.1, listenPort: 4433}\n",
            path: "tunnel.localSockets[1]",
            line: 10,
            fragment: "tunnel.localSockets[0] already uses"
        ),
        Case(
            name: "two remote apps on one Unix path",
            yaml: header
                + "remoteApps:\n- {siteName: b, appName: a, localSocket: \"unix:/tmp/a.sock\"}\n- {siteName: b, appName: c, localSocket: \"unix:/tmp/a.sock\"}\n",
            path: "remoteApps[1].localSocket",
            line: 9,
            fragment: "already used by remoteApps[0].localSocket"
        ),
        Case(
            name: "api listenAddr without port",
            yaml: header + "restfulApi:\n  enabled: true\n  listenAddr: 127.0.0.1\n",
            path: "restfulApi.listenAddr",
            line: 9,
            fragment: "expected HOST:PORT"
        ),
        Case(
            name: "api enabled not a bool",
            yaml: header + "restfulApi:\n  enabled: maybe\n",
            path: "restfulApi.enabled",
            line: 8,
            fragment: "expected true or false"
        ),
        Case(
            name: "api TLS without cert",
            yaml: header + "restfulApi:\n  tls:\n    enabled: true\n    key: /etc/hostname\n",
            path: "restfulApi.tls.cert",
            line: 9,
            fragment: "TLS needs both key and cert"
        ),
        Case(
            name: "basic auth without password",
            yaml: header + "restfulApi:\n  auth:\n    basicAuth:\n    - user: admin\n",
            path: "restfulApi.auth.basicAuth[0].password",
            line: 10,
            fragment: "missing — required"
        ),
        Case(
            name: "duplicate key, any case",
            yaml: header + "SITENAME: other\n",
            path: "siteName",
            line: 7,
            fragment: "duplicate key (first at line 1)"
        ),
        Case(
            name: "publicUrl on a TLS socket",
            yaml: header
                + "tunnel:\n  localSockets:\n  - mode: dedicated-address\n    listenAddress: 127.0.0.1\n    listenPort: 4000\n    publicUrl: wss://example.com/weft\n",
            path: "tunnel.localSockets[0].publicUrl",
            line: 12,
            fragment: "publicUrl needs transportProtocol: websocket"
        ),
        Case(
            name: "publicUrl not a WebSocket URL",
            yaml: header
                + "tunnel:\n  localSockets:\n  - mode: dedicated-address\n    transportProtocol: websocket\n    listenAddress: 127.0.0.1\n    listenPort: 4000\n    publicUrl: https://example.com/weft\n",
            path: "tunnel.localSockets[0].publicUrl",
            line: 13,
            fragment: "expected ws://HOST[:PORT]/PATH or wss://HOST[:PORT]/PATH"
        ),
        Case(
            name: "path without a slash",
            yaml: header
                + "tunnel:\n  localSockets:\n  - mode: dedicated-address\n    transportProtocol: websocket\n    listenAddress: 127.0.0.1\n    listenPort: 4000\n    path: weft\n",
            path: "tunnel.localSockets[0].path",
            line: 13,
            fragment: "expected a path starting with /"
        ),
        Case(
            name: "proxy with an unknown scheme",
            yaml: header + "tunnel:\n  proxy: https://proxy.example:3128\n",
            path: "tunnel.proxy",
            line: 8,
            fragment: "expected http://HOST:PORT or socks5://HOST:PORT"
        ),
        Case(
            name: "congestion control not a name",
            yaml: header + "tunnel:\n  congestionControl: \"bbr; rm\"\n",
            path: "tunnel.congestionControl",
            line: 8,
            fragment: "expected a congestion control name"
        ),
        Case(
            name: "relay limit out of range",
            yaml: header + "tunnel:\n  relayLimits:\n    perPair: 0\n",
            path: "tunnel.relayLimits.perPair",
            line: 9,
            fragment: "expected 1 to 4096 relayed streams"
        ),
        Case(
            name: "relay limits: total below perPair",
            yaml: header + "tunnel:\n  relayLimits:\n    perPair: 10\n    total: 5\n",
            path: "tunnel.relayLimits.total",
            line: 10,
            fragment: "total is below perPair"
        ),
        Case(
            name: "relay not a boolean",
            yaml: header + "tunnel:\n  relay: maybe\n",
            path: "tunnel.relay",
            line: 8,
            fragment: "expected true or false"
        ),
        Case(
            name: "caFile unreadable",
            yaml: header + "tunnel:\n  caFile: /nonexistent/ca.pem\n",
            path: "tunnel.caFile",
            line: 8,
            fragment: "no readable file at /nonexistent/ca.pem"
        ),
        Case(
            name: "bluetooth adapter not an address or hciN",
            yaml: header + bluetoothSocket + "    listenAddress: hci01\n    listenPort: 3\n",
            path: "tunnel.localSockets[0].listenAddress",
            line: 11,
            fragment: "\"hci01\" — expected a Bluetooth adapter's address (00:1A:7D:DA:71:13) or name (hci0)"
        ),
        Case(
            name: "bluetooth adapter written as an IP address",
            yaml: header + bluetoothSocket + "    listenAddress: 0.0.0.0\n    listenPort: 3\n",
            path: "tunnel.localSockets[0].listenAddress",
            line: 11,
            fragment: "expected a Bluetooth adapter's address"
        ),
        Case(
            name: "bluetooth without an adapter",
            yaml: header + bluetoothSocket + "    listenPort: 3\n",
            path: "tunnel.localSockets[0].listenAddress",
            line: 9,
            fragment: "missing — required"
        ),
        Case(
            name: "bluetooth channel out of range",
            yaml: header + bluetoothSocket + "    listenAddress: hci0\n    listenPort: 31\n",
            path: "tunnel.localSockets[0].listenPort",
            line: 12,
            fragment: "\"31\" — expected an RFCOMM channel from 1 to 30"
        ),
        Case(
            name: "bluetooth channel 0",
            yaml: header + bluetoothSocket + "    listenAddress: hci0\n    listenPort: 0\n",
            path: "tunnel.localSockets[0].listenPort",
            line: 12,
            fragment: "expected an RFCOMM channel from 1 to 30"
        ),
        Case(
            name: "bluetooth behind a port forward",
            yaml: header
                + "tunnel:\n  localSockets:\n  - mode: port-forwarding\n    transportProtocol: bluetooth\n    listenAddress: hci0\n    listenPort: 3\n",
            path: "tunnel.localSockets[0].mode",
            line: 9,
            fragment: "expected dedicated-address (peers dial a Bluetooth adapter's own address)"
        ),
        Case(
            name: "bluetooth with a public address",
            yaml: header + bluetoothSocket
                + "    listenAddress: hci0\n    listenPort: 3\n    publicAddress: 192.0.2.1\n",
            path: "tunnel.localSockets[0].publicAddress",
            line: 13,
            fragment: "not used with transportProtocol: bluetooth"
        ),
        Case(
            name: "two bluetooth sockets on one adapter and channel",
            yaml: header + bluetoothSocket + "    listenAddress: hci0\n    listenPort: 3\n"
                + bluetoothSocket.dropFirst(24) + "    listenAddress: hci0\n    listenPort: 3\n",
            path: "tunnel.localSockets[1].listenPort",
            line: 16,
            fragment: "hci0 channel 3 is already used by tunnel.localSockets[0]"
        ),
        Case(
            name: "usb with a port",
            yaml: header
                + "tunnel:\n  localSockets:\n  - mode: usb-gadget\n    transportProtocol: usb\n    listenPort: 3\n",
            path: "tunnel.localSockets[0].listenPort",
            line: 11,
            fragment: "not used with transportProtocol: usb (peers find a gadget by its serial number)"
        ),
        Case(
            name: "usb with a TCP mode",
            yaml: header + "tunnel:\n  localSockets:\n  - mode: dedicated-address\n    transportProtocol: usb\n",
            path: "tunnel.localSockets[0].mode",
            line: 9,
            fragment: "expected usb-gadget or usb-host with transportProtocol: usb"
        ),
        Case(
            name: "a usb mode over TLS",
            yaml: header + "tunnel:\n  localSockets:\n  - mode: usb-gadget\n    listenPort: 3\n",
            path: "tunnel.localSockets[0].mode",
            line: 9,
            fragment: "usb-gadget needs transportProtocol: usb"
        ),
        Case(
            name: "usb gadget controller not a name",
            yaml: header
                + "tunnel:\n  localSockets:\n  - mode: usb-gadget\n    transportProtocol: usb\n    listenAddress: ../x\n",
            path: "tunnel.localSockets[0].listenAddress",
            line: 11,
            fragment: "expected a USB device controller's name from /sys/class/udc"
        ),
        Case(
            name: "usb host with a controller",
            yaml: header
                + "tunnel:\n  localSockets:\n  - mode: usb-host\n    transportProtocol: usb\n    listenAddress: dummy_udc.0\n",
            path: "tunnel.localSockets[0].listenAddress",
            line: 11,
            fragment: "not used with mode: usb-host"
        ),
        Case(
            name: "two usb gadget sockets",
            yaml: header
                + "tunnel:\n  localSockets:\n  - mode: usb-gadget\n    transportProtocol: usb\n"
                + "  - mode: usb-gadget\n    transportProtocol: usb\n",
            path: "tunnel.localSockets[1].mode",
            line: 11,
            fragment: "a site has one usb-gadget socket; tunnel.localSockets[0] is one already"
        ),
        Case(
            name: "root not a mapping",
            yaml: "- a\n- b\n",
            path: "",
            line: 1,
            fragment: "expected a mapping"
        ),
    ]

    static let bluetoothSocket =
        "tunnel:\n  localSockets:\n  - mode: dedicated-address\n    transportProtocol: bluetooth\n"

    @Test("each invalid case reports its key path and line", arguments: cases)
    func invalidCase(_ testCase: Case) throws {
        let errors = configErrors(testCase.yaml)
        let match = errors.first { $0.path == testCase.path }
        let found = try #require(match, "no error at \(testCase.path); got \(errors.map(\.description))")
        #expect(found.line == testCase.line, "\(found)")
        #expect(found.message.contains(testCase.fragment), "\(found)")
        #expect(found.description.hasPrefix("config.yaml:\(testCase.line):"), "\(found)")
    }

    @Test("the issue's example message, to the letter")
    func exampleMessage() {
        let yaml =
            minimalConfig
            + "localExposedApps:\n- appName: web\n  appSocket: tcp:127.0.0.1:80\n- appName: bad\n  appSocket: sctp:10.0.0.1:80\n"
        let errors = configErrors(yaml)
        #expect(
            errors.map(\.description) == [
                "config.yaml:11:14: localExposedApps[1].appSocket: \"sctp:10.0.0.1:80\" — expected tcp:IP:PORT, tcp:[IPv6]:PORT, udp:IP:PORT or unix:/path"
            ]
        )
    }

    @Test("every problem is reported at once")
    func allAtOnce() {
        let yaml = """
            siteName: ""
            crypto: {key: short}
            logger: {level: loud}
            messageChannel: {mqtt: {brokerServer: "http://x"}}
            localExposedApps:
            - {appName: a, appSocket: "sctp:1.2.3.4:5"}

            """
        let paths = Set(configErrors(yaml).map(\.path))
        #expect(
            paths == [
                "siteName", "crypto.key", "logger.level", "messageChannel.mqtt.brokerServer",
                "localExposedApps[0].appSocket",
            ]
        )
    }

    @Test("a wildcard topic is refused")
    func wildcardTopic() {
        let yaml = minimalConfig.replacingOccurrences(of: "1883\n", with: "1883\n    topic: mesh/#\n")
        let errors = configErrors(yaml)
        #expect(errors.first?.path == "messageChannel.mqtt.topic")
        #expect(errors.first?.line == 7)
    }

    @Test("YAML syntax errors give the line")
    func syntaxError() throws {
        do {
            _ = try loadConfig("siteName: a\ncrypto:\n  key: \"unterminated\nlogger: x\n")
            Issue.record("loaded")
        } catch {
            #expect(error.code == .syntax)
            let diagnostic = try #require(error.diagnostics.first)
            #expect(diagnostic.line >= 3)
            #expect(diagnostic.description.hasPrefix("config.yaml:\(diagnostic.line):"))
            #expect(diagnostic.message.contains("YAML syntax error"))
        }
        do {
            _ = try loadConfig("siteName: a\n  bad: indentation\n")
            Issue.record("loaded")
        } catch {
            #expect(error.code == .syntax)
            #expect(error.diagnostics.first?.line == 2)
        }
    }

    @Test("an empty file says what is required")
    func emptyFile() {
        let errors = configErrors("")
        #expect(errors.first?.message.contains("siteName") == true)
    }

    @Test("the key is never quoted in an error")
    func keyNotQuoted() {
        let errors = configErrors(minimalConfig.replacingOccurrences(of: "\"0123456789abcdef\"", with: "secret1"))
        #expect(errors.count == 1)
        #expect(!errors[0].description.contains("secret1"))
    }
}
