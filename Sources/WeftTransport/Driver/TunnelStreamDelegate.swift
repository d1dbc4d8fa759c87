import NIOCore
import WeftTunnel
import WeftWire

/// Receives what happens on one stream. Called on the tunnel driver's event loop.
///
/// The delegate owns the delivered bytes: it calls `TunnelDriver.consumed(_:on:)` once the app
/// has taken them (written them to its socket, say), which is what gives the peer more credit.
public protocol TunnelStreamDelegate: AnyObject {
    func streamReceived(_ bytes: ByteBuffer, on stream: StreamID)
    /// The peer finished its direction; every byte has been delivered.
    func streamRemoteFinished(_ stream: StreamID)
    /// The stream ended abnormally (peer's reset, or the tunnel was lost).
    func streamReset(_ stream: StreamID, code: StreamReset.Code, message: String)
    /// Both directions finished; the stream is gone.
    func streamClosed(_ stream: StreamID)
    /// Stop (and later resume) reading the app: the tunnel holds enough of its bytes.
    func streamPauseReading(_ stream: StreamID)
    func streamResumeReading(_ stream: StreamID)
}
