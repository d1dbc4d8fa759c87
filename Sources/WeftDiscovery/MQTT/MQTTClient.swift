import CMosquitto
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// An MQTT client over libmosquitto's threaded mode.
///
/// libmosquitto runs its own network thread, reconnects by itself with backoff, and calls back
/// on that thread. The callbacks only copy data out and yield it into bounded async streams;
/// everything else happens in the consumer's tasks. The C handle never leaves this type.
public final class MQTTClient: Sendable {
    /// Produces the last will for the next connection: `(topic, payload)`, published retained
    /// by the broker if the connection dies without a DISCONNECT. Called before every connect.
    public typealias WillProvider = @Sendable () -> (topic: String, payload: [UInt8])?
    /// Judges each message on libmosquitto's thread before it is queued; false keeps it out of
    /// `messages`, so a flood costs the judging but never pushes other messages out of the queue.
    public typealias Intake = @Sendable (inout MQTTMessage) -> Bool

    public let configuration: MQTTClientConfiguration
    /// Messages from subscriptions, oldest first; bounded by `messageBufferLimit`.
    public let messages: AsyncStream<MQTTMessage>
    /// Connection changes.
    public let connectionEvents: AsyncStream<MQTTConnectionEvent>

    private let handle: Handle
    private let box: CallbackBox
    private let lifecycle = Mutex(Lifecycle.created)

    private enum Lifecycle {
        case created
        case running
        case stopped
    }

    /// The C handle; only touched through libmosquitto's thread-safe calls.
    private struct Handle: @unchecked Sendable {
        let pointer: OpaquePointer
    }

    public init(configuration: MQTTClientConfiguration, will: WillProvider? = nil) throws(MQTTError) {
        MosquittoLibrary.ensureInitialized()
        self.configuration = configuration
        let (messages, messageContinuation) = AsyncStream.makeStream(
            of: MQTTMessage.self,
            bufferingPolicy: .bufferingNewest(configuration.messageBufferLimit)
        )
        let (events, eventContinuation) = AsyncStream.makeStream(
            of: MQTTConnectionEvent.self,
            bufferingPolicy: .bufferingNewest(64)
        )
        self.messages = messages
        self.connectionEvents = events
        self.box = CallbackBox(
            messages: messageContinuation,
            events: eventContinuation,
            will: will,
            maxPayloadBytes: configuration.maxPayloadBytes
        )

        guard let pointer = mosquitto_new(configuration.clientID, true, nil) else {
            throw MQTTError(operation: "create client", reason: "mosquitto_new failed")
        }
        self.handle = Handle(pointer: pointer)
        mosquitto_user_data_set(pointer, Unmanaged.passUnretained(box).toOpaque())
        Self.installCallbacks(pointer)

        do throws(MQTTError) {
            try check(
                mosquitto_int_option(pointer, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311),
                "set protocol version"
            )
            try check(
                mosquitto_reconnect_delay_set(
                    pointer,
                    UInt32(configuration.reconnectDelay.lowerBound),
                    UInt32(configuration.reconnectDelay.upperBound),
                    true
                ),
                "set reconnect delay"
            )
            if let username = configuration.username {
                try check(mosquitto_username_pw_set(pointer, username, configuration.password), "set credentials")
            }
            if configuration.useTLS {
                let capath = configuration.caFile == nil ? "/etc/ssl/certs" : nil
                try check(
                    mosquitto_tls_set(pointer, configuration.caFile, capath, nil, nil, nil),
                    "set up TLS"
                )
            }
            box.renewWill(pointer)
        } catch {
            mosquitto_destroy(pointer)
            throw error
        }
    }

    deinit {
        stop()
        mosquitto_destroy(handle.pointer)
    }

    /// Starts connecting in the background. Failing to reach the broker now is not an error:
    /// libmosquitto keeps trying, and `connectionEvents` reports when it gets through.
    public func start() throws(MQTTError) {
        let shouldStart = lifecycle.withLock { state -> Bool in
            guard case .created = state else { return false }
            state = .running
            return true
        }
        guard shouldStart else { return }
        let pointer = handle.pointer
        let rc = mosquitto_connect_async(
            pointer, configuration.host, Int32(configuration.port), Int32(configuration.keepAlive))
        if rc != MOSQ_ERR_SUCCESS.rawValue && rc != MOSQ_ERR_ERRNO.rawValue && rc != MOSQ_ERR_EAI.rawValue {
            throw MQTTError(operation: "connect", reason: Self.describe(rc))
        }
        if rc != MOSQ_ERR_SUCCESS.rawValue {
            box.events.yield(.disconnected(Self.describe(rc)))
        }
        try check(mosquitto_loop_start(pointer), "start network thread")
    }

    /// Disconnects cleanly (so the broker publishes no will) and connects again, with a will
    /// asked anew from the provider: the will is fixed for the length of a connection, so this
    /// is how a changed key reaches it. Only while connected: a connection being made asks for
    /// its will before it starts. `connectionEvents` reports the disconnect and the connect.
    public func reconnect() {
        lifecycle.withLock { state in
            guard case .running = state, box.isConnected.load(ordering: .relaxed) else { return }
            let pointer = handle.pointer
            awaitAcknowledgements()
            // Lost meanwhile: the connection libmosquitto makes next asks for its will anew. (A
            // join now could wait on a thread that is reconnecting instead of ending.)
            guard box.isConnected.load(ordering: .relaxed) else { return }
            mosquitto_disconnect(pointer)
            // The network thread ends once DISCONNECT is written (the disconnect callback has
            // renewed the will by then); joined, then started again.
            mosquitto_loop_stop(pointer, false)
            let rc = mosquitto_reconnect_async(pointer)
            if rc != MOSQ_ERR_SUCCESS.rawValue {
                box.events.yield(.disconnected(Self.describe(rc)))
            }
            if mosquitto_loop_start(pointer) != MOSQ_ERR_SUCCESS.rawValue {
                box.events.yield(.disconnected("cannot start the network thread again"))
            }
        }
    }

    /// Subscribes with QoS 1. Subscriptions last for one connection: call again on `.connected`.
    public func subscribe(_ pattern: String) throws(MQTTError) {
        try check(mosquitto_subscribe(handle.pointer, nil, pattern, 1), "subscribe to \(pattern)")
    }

    /// Queues a message; delivery continues in the background.
    public func publish(topic: String, payload: [UInt8], qos: Int32 = 1, retain: Bool = false) throws(MQTTError) {
        var mid: Int32 = 0
        let rc = payload.withUnsafeBytes { raw in
            mosquitto_publish(handle.pointer, &mid, topic, Int32(raw.count), raw.baseAddress, qos, retain)
        }
        try check(rc, "publish to \(topic)")
        if qos > 0 { box.sent(mid) }
    }

    /// Waits (a bounded time) until the broker has acknowledged every message published with
    /// QoS 1. Disconnecting before that loses the DISCONNECT: the broker's acknowledgement
    /// reaches a closed socket, which answers with a reset, and the broker, reset before it
    /// read the DISCONNECT, publishes the last will of a site that is alive.
    private func awaitAcknowledgements(within limit: Duration = .seconds(2)) {
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        while box.unacknowledged > 0, box.isConnected.load(ordering: .relaxed), clock.now < deadline {
            usleep(2_000)
        }
    }

    /// Sets the judge of incoming messages (before `start()`).
    public func setIntake(_ intake: @escaping Intake) {
        box.intake.withLock { $0 = IntakeJudge(judge: intake) }
    }

    /// How many received messages were dropped because the consumer fell behind.
    public var droppedMessages: Int { box.dropped.load(ordering: .relaxed) }

    /// Disconnects cleanly (no last will) after everything already queued, stops the network
    /// thread and ends both streams. Safe to call more than once.
    public func stop() {
        let wasRunning = lifecycle.withLock { state -> Bool in
            defer { state = .stopped }
            if case .running = state { return true }
            return false
        }
        if wasRunning {
            awaitAcknowledgements()
            let connected = box.isConnected.load(ordering: .relaxed)
            mosquitto_disconnect(handle.pointer)
            // A connected thread exits once DISCONNECT is written; one that is between reconnect
            // attempts may be asleep, so it is cancelled instead.
            mosquitto_loop_stop(handle.pointer, !connected)
        }
        box.finish()
    }

    private func check(_ rc: Int32, _ operation: String) throws(MQTTError) {
        guard rc == MOSQ_ERR_SUCCESS.rawValue else {
            throw MQTTError(operation: operation, reason: Self.describe(rc))
        }
    }

    static func describe(_ rc: Int32) -> String {
        String(cString: mosquitto_strerror(rc))
    }

    /// Callbacks run on libmosquitto's thread; they reach the box through userdata.
    private static func installCallbacks(_ pointer: OpaquePointer) {
        mosquitto_connect_callback_set(pointer) { _, userdata, rc in
            guard let userdata else { return }
            Unmanaged<CallbackBox>.fromOpaque(userdata).takeUnretainedValue().connected(rc)
        }
        mosquitto_disconnect_callback_set(pointer) { mosq, userdata, rc in
            guard let userdata, let mosq else { return }
            Unmanaged<CallbackBox>.fromOpaque(userdata).takeUnretainedValue().disconnected(mosq, rc)
        }
        mosquitto_publish_callback_set(pointer) { _, userdata, mid in
            guard let userdata else { return }
            Unmanaged<CallbackBox>.fromOpaque(userdata).takeUnretainedValue().acknowledged(mid)
        }
        mosquitto_message_callback_set(pointer) { _, userdata, message in
            guard let userdata, let message else { return }
            Unmanaged<CallbackBox>.fromOpaque(userdata).takeUnretainedValue().received(message)
        }
    }
}

/// The intake closure, held in a struct. A bare function type kept in a `Mutex` is
/// re-abstracted on every `withLock` (the inout access converts it out and back), so each
/// message wrapped it in two more thunks: a chain that grew with every message received.
struct IntakeJudge: Sendable {
    let judge: MQTTClient.Intake
}

/// What libmosquitto's thread talks to.
final class CallbackBox: Sendable {
    let messages: AsyncStream<MQTTMessage>.Continuation
    let events: AsyncStream<MQTTConnectionEvent>.Continuation
    let will: MQTTClient.WillProvider?
    let maxPayloadBytes: Int
    let dropped = Atomic<Int>(0)
    let isConnected = Atomic<Bool>(false)
    let intake = Mutex<IntakeJudge?>(nil)
    /// QoS 1 messages sent and not yet acknowledged, by message id; and acknowledgements that
    /// arrived before their `publish` call returned.
    private let inFlight = Mutex<(sent: Set<Int32>, early: Set<Int32>)>(([], []))

    var unacknowledged: Int { inFlight.withLock { $0.sent.count } }

    func sent(_ mid: Int32) {
        inFlight.withLock { if $0.early.remove(mid) == nil { $0.sent.insert(mid) } }
    }

    func acknowledged(_ mid: Int32) {
        inFlight.withLock { state in
            guard state.sent.remove(mid) == nil else { return }
            // Ids wrap at 65,535; acknowledgements of messages never counted must not pile up.
            if state.early.count >= 1024 { state.early.removeAll() }
            state.early.insert(mid)
        }
    }

    init(
        messages: AsyncStream<MQTTMessage>.Continuation,
        events: AsyncStream<MQTTConnectionEvent>.Continuation,
        will: MQTTClient.WillProvider?,
        maxPayloadBytes: Int
    ) {
        self.messages = messages
        self.events = events
        self.will = will
        self.maxPayloadBytes = maxPayloadBytes
    }

    func connected(_ rc: Int32) {
        if rc == 0 {
            isConnected.store(true, ordering: .relaxed)
            events.yield(.connected)
        } else {
            events.yield(.refused(String(cString: mosquitto_connack_string(rc))))
        }
    }

    func disconnected(_ pointer: OpaquePointer, _ rc: Int32) {
        isConnected.store(false, ordering: .relaxed)
        // The next connection gets a will of its own (a fresh session binds it to that connection).
        renewWill(pointer)
        events.yield(.disconnected(rc == 0 ? "disconnected" : MQTTClient.describe(rc)))
    }

    func renewWill(_ pointer: OpaquePointer) {
        guard let will, let (topic, payload) = will() else { return }
        _ = payload.withUnsafeBytes { raw in
            mosquitto_will_set(pointer, topic, Int32(raw.count), raw.baseAddress, 1, true)
        }
    }

    func received(_ message: UnsafePointer<mosquitto_message>) {
        let topic = message.pointee.topic.map { String(cString: $0) } ?? ""
        let length = Int(message.pointee.payloadlen)
        var payload: [UInt8] = []
        let oversized = length > maxPayloadBytes
        if !oversized, length > 0, let bytes = message.pointee.payload {
            payload = Array(UnsafeRawBufferPointer(start: bytes, count: length))
        }
        var received = MQTTMessage(
            topic: topic, payload: payload, retained: message.pointee.retain, oversized: oversized)
        if let intake = intake.withLock({ $0 }), !intake.judge(&received) { return }
        let result = messages.yield(received)
        if case .dropped = result { dropped.add(1, ordering: .relaxed) }
    }

    func finish() {
        messages.finish()
        events.finish()
    }
}

/// `mosquitto_lib_init` is not thread-safe: it runs exactly once, before the first client.
enum MosquittoLibrary {
    private static let initialized: Bool = {
        mosquitto_lib_init()
        return true
    }()

    static func ensureInitialized() {
        _ = initialized
    }
}
