import TallyCore

/// Rendering of `tally key create|revoke|list`.
public enum KeyTool {
    public static let headers = ["KEY", "TENANT", "NAME", "PREFIX", "STATUS", "PERMISSIONS", "CREATED"]

    public static func table(_ keys: [ApiKey]) -> TextTable {
        TextTable(
            headers: headers,
            rows: keys.map { key in
                [
                    key.id, key.tenant, key.name, key.prefix, key.status.cyclesName,
                    key.permissions.map(\.rawValue).joined(separator: ","),
                    TimeText.format(milliseconds: key.createdAtMilliseconds),
                ]
            })
    }

    public static func render(_ keys: [ApiKey]) -> Rendered {
        Rendered(tables: [table(keys)], json: keys.map(CyclesJSON.apiKey))
    }

    public static func render(_ key: ApiKey) -> Rendered {
        Rendered(tables: [table([key])], json: CyclesJSON.apiKey(key))
    }

    /// The secret is printed once, here: the server stored only its hash.
    public static let secretNote =
        "The secret is shown only now; Tally stores only its SHA-256. Keep it somewhere safe."

    public static func renderCreated(_ key: ApiKey, secret: String) -> Rendered {
        var json = CyclesJSON.apiKey(key)
        json["key_secret"] = secret
        json["note"] = secretNote
        let table = table([key]).render() + "\n\nsecret: \(secret)\n\(secretNote)"
        return Rendered(table: table, json: CyclesJSON.text(json))
    }
}
