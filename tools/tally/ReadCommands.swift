import ArgumentParser
import Foundation
import Glibc
import TallyClient
import TallyCore
import TallyTools
import TallyWire

struct Balances: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the balances of budgets.",
        discussion: "Subject flags (--workspace, --agent, ...) keep the budgets whose scope has that segment; with the "
            + "admin key, name the tenant with --tenant. " + exitCodesDiscussion)

    @OptionGroup var client: ClientOptions
    @OptionGroup var subject: SubjectOptions
    @OptionGroup var filters: BalanceFilterOptions

    func run() async throws {
        let settings = try client.settings()
        var request = try filters.request(try subject.subject(), tenant: subject.tenant)
        if case .tenantKey = settings.credential(for: .runtime), subject.tenant == nil { request.tenant = nil }
        try finish(
            await ClientCommand.run(settings, plane: .runtime) { [request] connection in
                BalanceTool.render(try await connection.balances(request))
            })
    }
}

struct Reservations: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show one reservation, or list reservations a page at a time.",
        discussion: "With the admin key, name the tenant with --tenant. " + exitCodesDiscussion)

    @OptionGroup var client: ClientOptions
    @Argument(help: "A reservation id: show this one only.") var reservationID: String?
    @OptionGroup var subject: SubjectOptions
    @Option(help: "Only this status: ACTIVE, COMMITTED, RELEASED or EXPIRED.") var status: String?
    @Option(help: "Only the reservation made with this idempotency key.") var idempotencyKey: String?
    @Option(help: "Page size.") var limit: UInt32 = 50
    @Option(help: "Continue after this reservation id (from the previous page).") var after: String?
    @Flag(help: "Oldest first (default: newest first).") var ascending = false

    func run() async throws {
        let settings = try client.settings()
        if let reservationID {
            return try finish(
                await ClientCommand.run(settings, plane: .runtime) { connection in
                    ReservationTool.render(try await connection.reservation(id: ReservationID(reservationID)))
                })
        }
        let status = try status.map { text in
            try usage { () throws(UsageError) in try RequestParsing.reservationStatus(text) }
        }
        let subject = try subject.subject()
        let request = ListReservationsRequest(
            tenant: subject.tenant, idempotencyKey: idempotencyKey, status: status,
            segments: RequestParsing.segments(subject),
            ascending: ascending, limit: limit, after: after)
        try finish(
            await ClientCommand.run(settings, plane: .runtime) { connection in
                let (reservations, hasMore) = try await connection.reservations(request)
                return ReservationTool.render(reservations, hasMore: hasMore)
            })
    }
}

struct Tail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print committed events as they are appended (admin key).",
        discussion: """
            One line per event: sequence, time, type and its main facts (JSON Lines with --format json). \
            Runs until interrupted or the connection closes. \(exitCodesDiscussion)
            """)

    @OptionGroup var client: ClientOptions
    @Option(help: "The first sequence to print (1 is the start of the log).") var from: UInt64 = 1
    @Option(help: "Events the server may send ahead of printing.") var credit: UInt32 = 256

    func run() async throws {
        let settings = try client.settings()
        let (from, credit) = (self.from, self.credit)
        Self.exitWhenStandardOutputCloses()
        try finish(
            await ClientCommand.withConnection(settings, plane: .admin) { connection in
                for try await (record, chain) in connection.subscribe(from: from, credit: credit) {
                    let line: String
                    do throws(EventCodecError) {
                        line = TailTool.line(try EventCodec.decode(record), chain: chain, format: settings.format)
                    } catch {
                        line = TailTool.undecodable(error, chain: chain)
                    }
                    // Unbuffered, so a pipe (`tally tail | grep`) sees each event as it comes.
                    FileHandle.standardOutput.write(Data((line + "\n").utf8))
                }
                return ClientCommand.exitSuccess
            })
    }

    /// Ends the process once its standard output is closed (the reader of `tally tail | head -1` is gone):
    /// a write would only find out at the next event, which on a quiet ledger may be hours away. A pipe
    /// whose reader left polls as an error; a terminal that went away as a hang-up; a file never does.
    static func exitWhenStandardOutputCloses() {
        let watcher = Thread {
            var watching = true
            while watching {
                var output = pollfd(fd: STDOUT_FILENO, events: 0, revents: 0)
                let ready = poll(&output, 1, -1)
                if ready > 0, output.revents & Int16(POLLERR | POLLHUP) != 0 { Glibc.exit(ClientCommand.exitSuccess) }
                watching = ready >= 0 || errno == EINTR
            }
        }
        watcher.name = "stdout-watcher"
        watcher.start()
    }
}
