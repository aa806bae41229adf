import Crypto
import TallyCore
import TallyStore
import TallyWire

/// Turns a hello's credential into a principal, and re-checks a tenant key on every request so that a
/// revoked key or a suspended tenant stops working at once, not at the next reconnect.
struct Authenticator: Sendable {
    let store: LedgerStore
    let adminKey: AdminKey

    func authenticate(_ credential: Credential, now: Int64) -> Result<(Principal, Digest256?), WireError> {
        switch credential {
        case .adminKey(let secret):
            guard adminKey.matches(secret) else { return .failure(WireError(code: .unauthorized, message: "the admin key is not valid")) }
            return .success((.admin, nil))
        case .tenantKey(let secret):
            let hash = SHA256.hash(data: Array(secret.utf8)).withUnsafeBytes { Digest256(bytes: $0) }!
            return check(hash, now: now).map { key in
                (.tenant(id: key.tenant, keyID: key.id, permissions: key.permissions), hash)
            }
        }
    }

    /// The key with this secret hash, if it is still usable now (semantics 5.1 and decision 13).
    func check(_ secretHash: Digest256, now: Int64) -> Result<ApiKey, WireError> {
        do {
            guard let key = try store.apiKey(secretHash: secretHash) else {
                return .failure(WireError(code: .unauthorized, message: "the API key is not valid"))
            }
            var view = LedgerState()
            view.apiKeys[key.id] = key
            view.apiKeyIDsByHash[secretHash] = key.id
            if let tenant = try store.tenant(key.tenant) { view.tenants[tenant.id] = tenant }
            return view.authenticate(secretHash: secretHash, now: now).mapError(WireError.init)
        } catch {
            return .failure(WireError(code: .internalError, message: "cannot read the key store: \(error)"))
        }
    }
}
