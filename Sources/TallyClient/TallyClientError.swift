import TallyWire

/// Why a request got no answer from the ledger: the connection failed, or the server said something the
/// client cannot use. A refusal by the ledger is a `WireError` instead, thrown with its code.
public enum TallyClientError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The connection closed before the answer came; `serverError` is the server's last word, if it said one.
    case connectionClosed(serverError: WireError?)
    /// The socket failed (reset, unreachable...); the connection was closed.
    case connectionFailed(String)
    /// `close()` was called while the request was waiting.
    case closedByClient
    /// The server sent bytes that are not a valid response frame; the connection was closed.
    case malformedResponse(String)
    /// The server answered with a response of another kind than the request calls for.
    case unexpectedResponse(expected: String, received: String)
    /// The request cannot be sent with `send(_:)` (the handshake, subscriptions and credit have their own calls).
    case unsupportedRequest(String)
    /// Writing to the socket failed.
    case writeFailed(String)

    public var description: String {
        switch self {
        case .connectionClosed(let serverError?):
            "the connection to the server closed (the server said: \(serverError))"
        case .connectionClosed(nil):
            "the connection to the server closed before it answered"
        case .connectionFailed(let reason):
            "the connection to the server failed: \(reason)"
        case .closedByClient:
            "the connection was closed by this client"
        case .malformedResponse(let reason):
            "the server sent a malformed response: \(reason)"
        case .unexpectedResponse(let expected, let received):
            "the server answered with \(received) where \(expected) was expected"
        case .unsupportedRequest(let reason):
            reason
        case .writeFailed(let reason):
            "could not write to the server: \(reason)"
        }
    }
}
