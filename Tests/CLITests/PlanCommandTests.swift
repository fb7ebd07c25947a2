import Foundation
import PipelineDSL
import TestSupport
import Testing

private let services = ["user-service", "expense-service", "notification-service", "api-service", "frontend-service"]

@Suite struct PlanCommandTests {
    @Test func stagingShowsFiveServiceChainsInOrder() throws {
        let result = try pipeline("plan", "staging")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("staging: branch staging → cluster staging-cluster in us-east-1"))
        #expect(block(result.stdout, startingWith: "run").first?.contains("checkout") == true)
        for service in services {
            let names = block(result.stdout, startingWith: "\(service)  (").map {
                String($0.dropFirst(2).prefix { $0 != " " })
            }
            #expect(names == ["build", "push", "register", "deploy", "dns", "health"], "\(service): \(names)")
        }
        #expect(!result.stdout.contains("approval"))
    }

    @Test func prodStopsAtTheGateBeforeAnyChange() throws {
        let text = try pipeline("plan", "prod")
        #expect(text.status == 0, "\(text.stderr)")
        for service in services {
            let lines = block(text.stdout, startingWith: "\(service)  (")
            let gate = try #require(lines.firstIndex(of: "  ── approval gate 'release' ──"), "\(service): \(lines)")
            #expect(lines[gate + 1].hasPrefix("  register"))
        }

        let json = try pipeline("plan", "prod", "--json")
        #expect(json.status == 0)
        let plan = try JSONDecoder().decode(Plan.self, from: Data(json.stdout.utf8))
        let byID = Dictionary(uniqueKeysWithValues: plan.stages.map { ($0.id, $0) })
        func waitsForGate(_ id: String) -> Bool {
            let stage = byID[id]!
            return stage.dependsOn.contains("release") || stage.dependsOn.contains(where: waitsForGate)
        }
        let changes: Set<StageKind> = [.registerTaskDefinition, .updateService, .dnsRecord, .healthCheck]
        let changing = plan.stages.filter { changes.contains($0.kind) }
        #expect(changing.count == 20)
        #expect(changing.allSatisfy { waitsForGate($0.id) })
        guard case .approval(let gate) = byID["release"]?.spec else {
            Issue.record("no approval stage")
            return
        }
        #expect(gate.approvers == ["alice", "bob", "carol"])
        #expect(gate.timeoutSeconds == 86400)
    }

    @Test func jsonIsThePlanSchema() throws {
        let result = try pipeline("plan", "staging", "--json")
        #expect(result.status == 0)
        let plan = try JSONDecoder().decode(Plan.self, from: Data(result.stdout.utf8))
        #expect(plan.version == Manifest.schemaVersion)
        #expect(plan.pipeline == "comyno")
        #expect(plan.environment.cluster == "staging-cluster")
        #expect(plan.stages.count == 31)
        #expect(plan.services.map(\.name) == services)
        #expect(plan.stages.first { $0.id == "api-service.deploy" }?.dependsOn == ["api-service.register"])
    }

    @Test func anUnknownEnvironmentListsTheKnownOnes() throws {
        let result = try pipeline("plan", "qa")
        #expect(result.status == 2)
        #expect(result.stderr == "error: unknown environment 'qa'; the pipeline defines: staging, prod\n")
        #expect(result.stdout.isEmpty)
    }

    @Test func listShowsEnvironmentsAndServices() throws {
        let result = try pipeline("list")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("prod         main     us-east-1  production-cluster  comyno.net          release"))
        for service in services { #expect(result.stdout.contains(service)) }
        #expect(result.stdout.contains("gRPC /user.UserService/Check"))
    }
}

@Suite struct CommandLineTests {
    @Test func versionAndHelpWithExitCodes() throws {
        let version = try pipeline("--version")
        #expect(version.status == 0)
        #expect(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines).range(of: #"^\d+\.\d+\.\d+$"#, options: .regularExpression) != nil)
        let help = try pipeline("--help")
        #expect(help.status == 0)
        #expect(help.stdout.contains("EXIT CODES"))
        #expect(help.stdout.contains("2    bad input, a refusal or a pipeline definition error"))
        #expect(help.stdout.contains("4    the run waits for approval"))
        #expect(help.stdout.contains("74   the run's state or logs could not be recorded"))
        for command in ["plan", "list"] {
            let sub = try pipeline(command, "--help")
            #expect(sub.status == 0)
            #expect(sub.stdout.contains("--pipelines <dir>"))
        }
    }

    @Test func usageErrorsAreBadInput() throws {
        let missing = try pipeline("plan")
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("Missing expected argument '<environment>'"))
        let unknown = try pipeline("plan", "staging", "--bogus")
        #expect(unknown.status == 2)
    }

    @Test func anInstalledCopyFindsItsLibrary() throws {
        let prefix = TemporaryDirectory("pipeline-prefix")
        let files = FileManager.default
        let bin = prefix.url.appending(path: "bin")
        let lib = prefix.url.appending(path: "lib/pipeline")
        try files.createDirectory(at: bin, withIntermediateDirectories: true)
        try files.createDirectory(at: lib, withIntermediateDirectories: true)
        // Copied by cp, in a process of its own: a copy written by this process is open for writing in it, and a
        // child another test starts meanwhile can inherit that descriptor and keep the file busy (ETXTBSY) as long
        // as it lives.
        let copied = try runProcess(URL(filePath: "/bin/cp"), [Project.executable.path, bin.appending(path: "pipeline").path])
        #expect(copied.status == 0, "\(copied.stderr)")
        try files.copyItem(
            at: Project.buildDirectory.appending(path: "libPipelineDSL.so"), to: lib.appending(path: "libPipelineDSL.so"))
        try files.copyItem(
            at: Project.dslLibrary.moduleDirectory.appending(path: "PipelineDSL.swiftmodule"),
            to: lib.appending(path: "PipelineDSL.swiftmodule"))
        let home = TemporaryDirectory()
        // Should ETXTBSY still come, it is waited out briefly, as Go's os/exec does.
        var result: ProcessOutput?
        for _ in 0..<100 where result == nil {
            do {
                result = try runProcess(bin.appending(path: "pipeline"), ["plan", "staging"], in: Project.root, environment: ["PIPELINE_HOME": home.url.path])
            } catch let error as NSError where (error.userInfo[NSUnderlyingErrorKey] as? NSError)?.code == Int(ETXTBSY) {
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        let ran = try #require(result)
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(ran.stdout.contains("31 stages"))
    }
}
