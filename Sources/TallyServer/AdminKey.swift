import Crypto
import Foundation
import TallyCore

/// The operator's admin key: configured, or generated once per data directory. Only its SHA-256 is ever
/// stored (`<data-directory>/admin-key.sha256`); comparison is constant-time.
public struct AdminKey: Sendable {
    let hash: [UInt8]
    /// Set only when this start generated the key: the caller prints it once.
    public let generatedSecret: String?

    /// Resolves the key for a data directory: the configured secret if any (its hash replaces a stored
    /// one), else the stored hash, else a new random key.
    public static func resolve(configured: String?, dataDirectory: String) throws -> AdminKey {
        let path = dataDirectory + "/admin-key.sha256"
        if let configured {
            guard configured.utf8.count >= 16 else {
                throw ServerError("the admin key must be at least 16 characters long")
            }
            return AdminKey(hash: Array(SHA256.hash(data: Array(configured.utf8))), generatedSecret: nil)
        }
        if let stored = try? String(contentsOfFile: path, encoding: .utf8), let hash = hexBytes(stored.trimmingCharacters(in: .whitespacesAndNewlines)), hash.count == 32 {
            return AdminKey(hash: hash, generatedSecret: nil)
        }
        let secret = "tally_admin_" + SecretGenerator.randomToken()
        let hash = Array(SHA256.hash(data: Array(secret.utf8)))
        try (hash.map { String(format: "%02x", $0) }.joined() + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return AdminKey(hash: hash, generatedSecret: secret)
    }

    func matches(_ secret: String) -> Bool {
        let candidate = Array(SHA256.hash(data: Array(secret.utf8)))
        var difference: UInt8 = 0
        for (a, b) in zip(candidate, hash) { difference |= a ^ b }
        return difference == 0 && candidate.count == hash.count
    }

    private static func hexBytes(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index...index + 1], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}

/// Random secrets for API keys and the admin key: 32 bytes (256 bits) from the system generator, as
/// lower-case hex.
enum SecretGenerator {
    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }
}

/// A failure to start or run the server, with a sentence for the operator.
public struct ServerError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
