import Logging
import NIOCore
import NIOPosix
import WeftTransport
import WeftWire

/// Works out the endpoints this site announces: literal public addresses as written, detected
/// ones (HTTP or STUN) found now and again every `period`, re-announced when they change.
///
/// A detection that fails keeps the socket's last detected address (a flaky detector must not
/// make the site unreachable) and is retried after `retry`; a socket never detected is not
/// announced.
public struct PublicAddressMonitor: Sendable {
    public var sockets: [LocalSocketConfig]
    public var stunServers: [String]
    public var period: Duration
    public var retry: Duration
    public var timeout: TimeAmount
    private let logger: Logger

    public init(
        sockets: [LocalSocketConfig],
        stunServers: [String],
        period: Duration = .seconds(300),
        retry: Duration = .seconds(30),
        timeout: TimeAmount = .seconds(5),
        logger: Logger
    ) {
        self.sockets = sockets
        self.stunServers = stunServers
        self.period = period
        self.retry = retry
        self.timeout = timeout
        self.logger = logger
    }

    /// The endpoints known without any detection.
    public var literalEndpoints: [SiteAnnouncement.Endpoint] {
        sockets.compactMap { socket in
            if let url = socket.publicURL { return url.announced }
            guard case .literal(let address) = socket.publicAddress else { return nil }
            return Self.endpoint(address, socket)
        }
    }

    /// Whether the socket's endpoint needs no detection.
    static func isFixed(_ socket: LocalSocketConfig) -> Bool {
        if socket.publicURL != nil { return true }
        switch socket.publicAddress {
        case .literal, .adapter: return true
        case .autoHttpDetect, .autoStunDetect: return false
        }
    }

    /// What a socket at `address` is announced as (its public URL, when it has one).
    static func endpoint(_ address: IPAddress, _ socket: LocalSocketConfig) -> SiteAnnouncement.Endpoint? {
        if let url = socket.publicURL { return url.announced }
        let endpoint = LinkEndpoint(
            transport: socket.transportProtocol.linkType, host: address.description, port: socket.publicPort,
            path: socket.path)
        // A detected IPv6 address with a long path may not fit; the config check covers literals.
        guard endpoint.transport != .websocket || endpoint.url.utf8.count <= LinkEndpoint.maxURLLength else {
            return nil
        }
        return endpoint.announced
    }

    /// Detects until cancelled, calling `onChange` with the full endpoint list when it changes.
    /// Returns at once if no socket needs detection.
    public func run(onChange: @Sendable ([SiteAnnouncement.Endpoint]) -> Void) async {
        guard sockets.contains(where: { !Self.isFixed($0) }) else { return }
        var detected: [Int: IPAddress] = [:]
        var announced = literalEndpoints
        while !Task.isCancelled {
            var allDetected = true
            for (index, socket) in sockets.enumerated() where !Self.isFixed(socket) {
                guard let address = await detect(socket) else {
                    allDetected = false
                    continue
                }
                if detected[index] != address {
                    logger.info(
                        "public address detected",
                        metadata: ["address": "\(address)", "method": "\(socket.publicAddress)"])
                }
                detected[index] = address
            }
            let endpoints = sockets.enumerated().compactMap { index, socket -> SiteAnnouncement.Endpoint? in
                if Self.isFixed(socket) {
                    if case .literal(let address) = socket.publicAddress { return Self.endpoint(address, socket) }
                    return socket.publicURL?.announced
                }
                return detected[index].flatMap { Self.endpoint($0, socket) }
            }
            if endpoints != announced {
                announced = endpoints
                onChange(endpoints)
            }
            do {
                try await Task.sleep(for: allDetected ? period : retry)
            } catch {
                return
            }
        }
    }

    /// One socket's address, or nil (logged) when detection failed or is not needed.
    func detect(_ socket: LocalSocketConfig) async -> IPAddress? {
        let group = MultiThreadedEventLoopGroup.singleton
        do {
            switch socket.publicAddress {
            case .literal(let address):
                return address
            case .adapter:
                // Announced by the site once its listener is bound (`SiteService`).
                return nil
            case .autoHttpDetect:
                guard let url = socket.httpDetectorURL else {
                    throw DetectionError(.invalidSetting, "no httpDetector.url")
                }
                return try await HTTPAddressDetector(url: url, timeout: timeout).detect(group: group)
            case .autoStunDetect:
                guard let server = socket.stunServer ?? stunServers.first else {
                    throw DetectionError(.invalidSetting, "no STUN server configured")
                }
                return try await STUNAddressDetector(server: server, timeout: timeout).detect(group: group)
            }
        } catch {
            logger.warning(
                "public address detection failed; retrying",
                metadata: ["method": "\(socket.publicAddress)", "error": "\(error)"])
            return nil
        }
    }
}
