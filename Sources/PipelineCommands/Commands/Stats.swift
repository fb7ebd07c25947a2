import ArgumentParser
import Foundation
import Runner

extension PipelineCommand {
    /// `pipeline stats [--env ENV] [--since 30d] [--json]`.
    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "stats",
            abstract: "The four DORA keys per environment and service, from the deployment records.",
            discussion: """
                Deployment frequency (deploys that passed their health check), lead time for changes (commit time \
                to healthy in the environment), change failure rate (changes undone by an automatic or a manual \
                rollback, over all changes attempted) and time to restore (from the failed change going out to the \
                rollback that restored the service). `pipeline serve` shows the same at /stats.
                """)

        @OptionGroup var global: GlobalOptions

        @Option(name: .customLong("env"), help: "Only this environment.")
        var environment: String?

        @Option(help: ArgumentHelp("How far back: a number of days, hours or weeks (30d, 12h, 2w).", valueName: "age"))
        var since: String = "30d"

        @Flag(help: "Print the figures as JSON (the shape `pipeline serve` answers at /api/v1/stats).")
        var json = false

        func validate() throws {
            if Self.age(since) == nil {
                throw ValidationError("--since '\(since)' is not an age: write a number of days, hours or weeks (at most a century), such as 30d, 12h or 2w")
            }
        }

        /// Seconds in an age such as `30d`, `12h` or `2w`.
        static func age(_ text: String) -> TimeInterval? {
            let digits = text.dropLast()
            guard let unit = text.last, !digits.isEmpty, digits.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
                let number = Double(digits), number > 0
            else { return nil }
            let seconds: Double
            switch unit {
            case "h": seconds = number * 3600
            case "d": seconds = number * 86400
            case "w": seconds = number * 7 * 86400
            default: return nil
            }
            return seconds <= 100 * 365 * 86400 ? seconds : nil  // a century covers any record
        }

        func run() async throws {
            do {
                let store = try StateAccess.open(try global.workspace())
                if let environment { try PlanLoading(global).requireKnown(environment: environment, recorded: false) }
                let stats = try store.deliveryStats(environment: environment, since: Date().addingTimeInterval(-Self.age(since)!))
                if json { return print(try JSONOutput.string(stats)) }
                guard !stats.services.isEmpty else {
                    print("no deployments in the last \(since)\(environment.map { " of \($0)" } ?? "")")
                    return
                }
                var table = TextTable(headers: ["ENV", "SERVICE", "DEPLOYS", "PER DAY", "LEAD TIME (MEDIAN, P90)", "CHANGE FAILURE", "ROLLBACKS (AUTO, MANUAL)", "TIME TO RESTORE"])
                for row in stats.services {
                    table.add([
                        row.environment, row.service, String(row.deployments), String(format: "%.2f", row.deploymentsPerDay),
                        row.leadTimeMedian.map { "\(TextConsole.format($0)), \(TextConsole.format(row.leadTime90 ?? $0))" } ?? "-",
                        row.changeFailureRate.map { String(format: "%.0f%% (%d of %d)", $0 * 100, row.failedChanges, row.changes) } ?? "-",
                        "\(row.automaticRollbacks), \(row.manualRollbacks)",
                        row.timeToRestoreMedian.map { TextConsole.format($0) } ?? "-",
                    ])
                }
                print(table.render(), terminator: "")
                print("since \(Dates.format(stats.since))")
            } catch {
                throw error.reported()
            }
        }
    }
}
