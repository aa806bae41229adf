import Crypto
import TallyCore

/// The idempotency payload hash of a request: SHA-256 of its kind byte followed by its body encoding.
///
/// Both gateways build a `Request` (the binary one by decoding a frame, the HTTP one from JSON) and hash
/// it here, so a retry through either gets the same digest. The body encoding is canonical (one byte form
/// per value, dictionaries sorted), which is what makes the digest a function of the request's value.
/// Every field takes part, the idempotency key and `dry_run` included: Cycles treats changing only
/// `dry_run` under the same key as a different payload.
public enum RequestFingerprint {
    /// Precondition: the request is within the wire limits (`WireCodec.checkLimits(_:)`).
    public static func digest(_ request: Request) -> Digest256 {
        var writer = ByteWriter()
        writer.writeU8(request.kind)
        writer.writeBody(of: request)
        return hash(writer)
    }

    /// The digest of `.reserve(reserve)` with its grace period set to `graceMilliseconds` (a default filled in),
    /// without building that request: a copy of it would retain and release every string it holds.
    public static func digest(reserve: ReserveRequest, graceMilliseconds: Int64?) -> Digest256 {
        var writer = ByteWriter()
        writer.writeU8(RequestKind.reserve.rawValue)
        writer.write(reserve, graceMilliseconds: graceMilliseconds)
        return hash(writer)
    }

    private static func hash(_ writer: ByteWriter) -> Digest256 {
        guard let digest = SHA256.hash(data: writer.bytes).withUnsafeBytes({ Digest256(bytes: $0) }) else {
            preconditionFailure("SHA-256 produces 32 bytes")
        }
        return digest
    }
}
