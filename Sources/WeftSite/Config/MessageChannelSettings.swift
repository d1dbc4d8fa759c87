import WeftWire

/// `messageChannel`: how sites find each other. Only MQTT exists, as in wovenet.
public struct MessageChannelSettings: Sendable, Equatable {
    public var mqtt: MQTTSettings
    public init(mqtt: MQTTSettings) { self.mqtt = mqtt }
}

/// `messageChannel.mqtt`.
public struct MQTTSettings: Sendable, Equatable, CustomStringConvertible {
    /// wovenet's default broker, used when `brokerServer` is absent (with a warning).
    public static let wovenetDefaultBroker = "mqtt://mqtt.eclipseprojects.io:1883"

    /// The brokers, in order: `brokerServer` first, then `brokerServers` (weft). Never empty.
    /// A site connects to every one, announces on each and merges what it hears.
    public var brokers: [BrokerAddress]
    /// The first broker.
    public var broker: BrokerAddress { brokers[0] }
    /// The topic all sites of the mesh share. Derived from a hash of the key when not set.
    public var topic: String
    /// Whether `topic` was derived rather than written in the file.
    public var topicIsDerived: Bool
    /// weft: broker user name.
    public var username: String?
    /// weft: broker password; never printed.
    public var password: String?
    /// weft: CA bundle to verify an `mqtts://` broker; the system store when absent.
    public var caFile: String?
    /// weft: MQTT keep-alive in seconds. A site that vanishes is reported down by the broker
    /// (its last will) about 1.5 × this later.
    public var keepAlive: Int

    public static let keepAliveRange = 5...3600
    /// Brokers at most: a site keeps a connection (and a thread) to each.
    public static let maxBrokers = 8

    public init(
        broker: BrokerAddress,
        moreBrokers: [BrokerAddress] = [],
        topic: String,
        topicIsDerived: Bool = false,
        username: String? = nil,
        password: String? = nil,
        caFile: String? = nil,
        keepAlive: Int = 10
    ) {
        self.brokers = [broker] + moreBrokers
        self.topic = topic
        self.topicIsDerived = topicIsDerived
        self.username = username
        self.password = password
        self.caFile = caFile
        self.keepAlive = keepAlive
    }

    public var description: String {
        "MQTTSettings(brokers: \(brokers.map(\.description).joined(separator: ",")), topic: \(topic), username: \(username ?? "-"), "
            + "password: \(password == nil ? "-" : "<set>"), caFile: \(caFile ?? "-"))"
    }
}

/// `mqtt://host[:port]` or `mqtts://host[:port]`.
public struct BrokerAddress: Sendable, Equatable, CustomStringConvertible {
    public var useTLS: Bool
    /// A host name or an IP literal (without brackets).
    public var host: String
    public var port: Int

    public init(useTLS: Bool, host: String, port: Int) {
        self.useTLS = useTLS
        self.host = host
        self.port = port
    }

    /// Parses the URL form; explains what is wrong otherwise.
    public static func parse(_ text: String) -> Result<BrokerAddress, SocketParseError> {
        let lower = text.lowercased()
        let useTLS: Bool
        let rest: Substring
        if lower.hasPrefix("mqtt://") {
            useTLS = false
            rest = text.dropFirst("mqtt://".count)
        } else if lower.hasPrefix("mqtts://") {
            useTLS = true
            rest = text.dropFirst("mqtts://".count)
        } else {
            return .failure(.init("expected mqtt://HOST:PORT or mqtts://HOST:PORT"))
        }
        var hostPort = String(rest)
        if hostPort.hasSuffix("/") { hostPort.removeLast() }
        guard !hostPort.isEmpty, !hostPort.contains("/"), !hostPort.contains("@"), !hostPort.contains("?") else {
            return .failure(.init("expected mqtt://HOST:PORT or mqtts://HOST:PORT (no path, user or query)"))
        }
        let defaultPort = useTLS ? 8883 : 1883
        let host: String
        var port = defaultPort
        let bracketed = hostPort.hasPrefix("[")
        let colons = hostPort.filter { $0 == ":" }.count
        if bracketed || colons == 1 {
            switch HostPort.split(hostPort) {
            case .failure(let error):
                if bracketed, !hostPort.contains("]:"), hostPort.hasSuffix("]") {
                    host = String(hostPort.dropFirst().dropLast())
                } else {
                    return .failure(error)
                }
            case .success(let (h, p)):
                switch HostPort.parsePort(p) {
                case .failure(let error): return .failure(error)
                case .success(let value): port = value
                }
                host = h
            }
        } else if colons == 0 {
            host = hostPort
        } else {
            return .failure(.init("IPv6 broker addresses need brackets, e.g. mqtt://[::1]:1883"))
        }
        guard !host.isEmpty, IPAddress(host) != nil || Self.isHostName(host) else {
            return .failure(.init("\"\(host)\" is neither a host name nor an IP address"))
        }
        return .success(BrokerAddress(useTLS: useTLS, host: host, port: port))
    }

    static func isHostName(_ text: String) -> Bool {
        guard text.utf8.count <= 253 else { return false }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
        }
    }

    public var description: String {
        "\(useTLS ? "mqtts" : "mqtt")://\(String(host: host, port: port))"
    }
}
