import TallyCore

/// Rendering of `tally tenant create|list|update`.
public enum TenantTool {
    public static let headers = ["TENANT", "NAME", "STATUS", "OVERAGE", "TTL_MS", "MAX_TTL_MS", "MAX_EXT", "CREATED"]

    public static func table(_ tenants: [Tenant]) -> TextTable {
        TextTable(
            headers: headers,
            rows: tenants.map { tenant in
                [
                    tenant.id, tenant.name, tenant.status.cyclesName, tenant.defaultOveragePolicy.cyclesName,
                    "\(tenant.defaultTTLMilliseconds)", "\(tenant.maxTTLMilliseconds)", "\(tenant.maxExtensions)",
                    TimeText.format(milliseconds: tenant.createdAtMilliseconds),
                ]
            })
    }

    public static func render(_ tenants: [Tenant]) -> Rendered {
        Rendered(tables: [table(tenants)], json: tenants.map(CyclesJSON.tenant))
    }

    public static func render(_ tenant: Tenant, created: Bool? = nil) -> Rendered {
        var json = CyclesJSON.tenant(tenant)
        if let created { json["created"] = created }
        return Rendered(tables: [table([tenant])], json: json)
    }
}
