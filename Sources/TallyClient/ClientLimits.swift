import TallyWire

/// The bounds this client puts on what a server can make it hold, each with its reason.
public enum ClientLimits {
    /// Responses can carry listings that no request field bounds (every budget of a tenant), so the client
    /// accepts four times the server's default request bound before it calls a frame hostile.
    public static let responseFrameBytesMax = 4 * WireLimits.frameBytesMaxDefault
    /// Requests in flight before the welcome announces the server's bound: the handshake alone.
    public static let inFlightRequestsBeforeWelcome = 1
    /// Subscription credit is a u32 on the wire, but every granted event may sit in the client's buffer
    /// until it is consumed; 65536 events of at most `WireLimits.eventRecordBytesMax` is already generous.
    public static let subscriptionCreditMax: UInt32 = 65_536
}
