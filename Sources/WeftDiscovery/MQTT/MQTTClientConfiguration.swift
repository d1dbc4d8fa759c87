/// How to reach a broker.
public struct MQTTClientConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// `mqtts://`: TLS, verified against `caFile` or the system's CAs.
    public var useTLS: Bool
    public var caFile: String?
    public var username: String?
    public var password: String?
    /// Unique per connection; the broker drops an older connection with the same id.
    public var clientID: String
    /// Seconds; the broker publishes the last will after 1.5 × this without traffic. At least 5.
    public var keepAlive: Int
    /// Reconnect delay bounds, seconds, doubling from the first to the second.
    public var reconnectDelay: ClosedRange<Int>
    /// Messages buffered for the consumer; beyond it the oldest are dropped (and counted),
    /// since a broker cannot be back-pressured.
    public var messageBufferLimit: Int
    /// Payloads larger than this are not copied: the consumer sees them as `oversized`.
    public var maxPayloadBytes: Int

    public init(
        host: String,
        port: Int,
        useTLS: Bool = false,
        caFile: String? = nil,
        username: String? = nil,
        password: String? = nil,
        clientID: String,
        keepAlive: Int = 10,
        reconnectDelay: ClosedRange<Int> = 1...4,
        messageBufferLimit: Int = 4096,
        maxPayloadBytes: Int = 64 * 1024
    ) {
        self.host = host
        self.port = port
        self.useTLS = useTLS
        self.caFile = caFile
        self.username = username
        self.password = password
        self.clientID = clientID
        self.keepAlive = keepAlive
        self.reconnectDelay = reconnectDelay
        self.messageBufferLimit = messageBufferLimit
        self.maxPayloadBytes = maxPayloadBytes
    }
}

/// A message as received: copied out of libmosquitto's callback.
public struct MQTTMessage: Sendable {
    public var topic: String
    public var payload: [UInt8]
    /// Delivered from the broker's retained store rather than published just now.
    public var retained: Bool
    /// The payload was over `maxPayloadBytes` and was not copied; `payload` is empty.
    public var oversized: Bool
    /// What the intake made of the payload, with the key generation it used: the agent takes
    /// it from here instead of decrypting and verifying the same bytes a second time.
    public internal(set) var opened: (message: VerifiedDiscoveryMessage, keyGeneration: Int)?

    public init(topic: String, payload: [UInt8], retained: Bool, oversized: Bool = false) {
        self.topic = topic
        self.payload = payload
        self.retained = retained
        self.oversized = oversized
    }
}

/// Connection changes, in order.
public enum MQTTConnectionEvent: Sendable, Hashable {
    /// Connected (or reconnected): subscriptions must be made again (clean session).
    case connected
    /// The broker refused the connection, with libmosquitto's reason text.
    case refused(String)
    /// The connection dropped; libmosquitto reconnects by itself.
    case disconnected(String)
}

/// An MQTT operation failed.
public struct MQTTError: Error, Hashable, Sendable, CustomStringConvertible {
    public var operation: String
    public var reason: String

    public init(operation: String, reason: String) {
        self.operation = operation
        self.reason = reason
    }

    public var description: String { "MQTT \(operation): \(reason)" }
}
