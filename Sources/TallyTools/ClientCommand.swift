import Foundation
import TallyClient
import TallyCore
import TallyWire

/// What every networked `tally` command shares: where the server is, which keys the user gave, how to
/// print, and the mapping of failures to messages and exit codes.
///
/// Exit codes: 0 success; 1 the ledger refused (an error frame: budget exceeded, not found, unauthorized...);
/// 2 usage, connection or server error (including `INTERNAL_ERROR` and protocol errors).
public struct ClientSettings: Sendable {
    public var address: TallyAddress
    public var apiKey: String?
    public var adminKey: String?
    public var format: OutputFormat

    public init(address: TallyAddress, apiKey: String?, adminKey: String?, format: OutputFormat) {
        self.address = address
        self.apiKey = apiKey
        self.adminKey = adminKey
        self.format = format
    }

    /// The environment variables that stand in for the flags.
    public static let addressVariable = "TALLY_ADDRESS"
    public static let apiKeyVariable = "TALLY_API_KEY"
    public static let adminKeyVariable = "TALLY_ADMIN_KEY"

    /// Flags first, then the environment, then the default address; empty values count as absent.
    public static func resolve(
        address: String?, apiKey: String?, adminKey: String?, format: OutputFormat,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(TallyAddress.AddressError) -> ClientSettings {
        func given(_ flag: String?, _ variable: String) -> String? {
            let value = flag ?? environment[variable]
            return value?.isEmpty == false ? value : nil
        }
        let address = try given(address, addressVariable).map { text throws(TallyAddress.AddressError) in
            try TallyAddress(parsing: text)
        }
        return ClientSettings(
            address: address ?? .default, apiKey: given(apiKey, apiKeyVariable),
            adminKey: given(adminKey, adminKeyVariable),
            format: format)
    }

    /// Which key a command presents: runtime commands prefer the tenant API key, admin commands the
    /// admin key; each falls back to the other so that the server, not the CLI, says what it allows.
    public func credential(for plane: Plane) -> Credential? {
        switch plane {
        case .runtime: apiKey.map(Credential.tenantKey) ?? adminKey.map(Credential.adminKey)
        case .admin: adminKey.map(Credential.adminKey) ?? apiKey.map(Credential.tenantKey)
        }
    }

    public enum Plane: Sendable {
        case runtime
        case admin
    }
}

/// Runs one command against the server and prints its result; answers the exit code.
public enum ClientCommand {
    public static let exitSuccess: Int32 = 0
    public static let exitRefused: Int32 = 1
    public static let exitFailure: Int32 = 2

    public static func run(
        _ settings: ClientSettings, plane: ClientSettings.Plane,
        _ operation: (TallyConnection) async throws -> Rendered
    ) async -> Int32 {
        await withConnection(settings, plane: plane) { connection in
            let rendered = try await operation(connection)
            print(rendered.text(in: settings.format))
            return exitSuccess
        }
    }

    /// Connects, runs `body`, closes; failures are printed on stderr and turned into exit codes.
    public static func withConnection(
        _ settings: ClientSettings, plane: ClientSettings.Plane, _ body: (TallyConnection) async throws -> Int32
    ) async -> Int32 {
        guard let credential = settings.credential(for: plane) else {
            let flag = plane == .runtime ? "--api-key (or TALLY_API_KEY)" : "--admin-key (or TALLY_ADMIN_KEY)"
            printError("no key given: pass \(flag)")
            return exitFailure
        }
        let connection: TallyConnection
        do {
            connection = try await TallyConnection.connect(
                host: settings.address.host, port: settings.address.port, credential: credential,
                clientName: "tally-cli")
        } catch {
            return report(error, connecting: settings.address)
        }
        let code: Int32
        do {
            code = try await body(connection)
        } catch {
            code = report(error, connecting: nil)
        }
        await connection.close()
        return code
    }

    /// Prints a failure on stderr (`tally: BUDGET_EXCEEDED (409): ...`) and answers its exit code.
    static func report(_ error: any Error, connecting address: TallyAddress?) -> Int32 {
        let (message, code) = describe(error, connecting: address)
        printError(message)
        return code
    }

    /// The message and exit code of a failure; pure, so the wording is tested.
    public static func describe(
        _ error: any Error, connecting address: TallyAddress?
    ) -> (message: String, exitCode: Int32) {
        switch error {
        case let refusal as WireError:
            let serverSide: Set<ErrorCode> = [.internalError, .malformedFrame, .unsupportedProtocolVersion]
            let text = "\(refusal.code.cyclesName) (\(refusal.code.httpStatus)): \(refusal.message)"
            return (text, serverSide.contains(refusal.code) ? exitFailure : exitRefused)
        case TallyClientError.connectionFailed(let reason) where address != nil:
            return ("cannot connect to \(address!): \(reason)", exitFailure)
        case let clientError as TallyClientError:
            return ("\(clientError)", exitFailure)
        case let usage as UsageError:
            return (usage.message, exitFailure)
        default:
            if let address { return ("cannot connect to \(address): \(error)", exitFailure) }
            return ("\(error)", exitFailure)
        }
    }

    public static func printError(_ message: String) {
        FileHandle.standardError.write(Data("tally: \(message)\n".utf8))
    }
}

/// A command-line value the CLI found wrong after parsing (exit code 2).
public struct UsageError: Error, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
