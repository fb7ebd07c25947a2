import AWS
import Foundation
import Hashing
import Testing
import TestSupport

/// What a team does in a week, through the CLI, with the reference pipelines and the example application against
/// stand-ins of this test's own: staging deploys of A and B, a prod run of B waiting, rejected once, approved, a
/// commit C whose health check fails and is rolled back by itself, `pipeline rollback user-service --to A`, and
/// the history and deployments telling exactly that. The AWS side is checked in moto, the registry with skopeo.
@Suite struct EndToEndTests {
    @Test func aWeekOfDeploysRollbacksAndApprovals() async throws {
        let aws = LocalAWS.dedicated()
        let folder = TemporaryDirectory("pipeline-e2e")
        let app = folder.url.appending(path: "app")
        let made = try await runProcess(Project.root.appending(path: "runner/dev/example-app"), [app.path])
        #expect(made.status == 0, "\(made.stderr)")
        // One change for the test's sake: a failing health check gives up after seconds, not the three minutes a
        // production pipeline allows.
        let pipelineFile = app.appending(path: "pipelines/Pipeline.swift")
        let source = try String(contentsOf: pipelineFile, encoding: .utf8)
        #expect(source.contains("HealthCheck(deadline: .minutes(3)"))
        try source.replacingOccurrences(of: "HealthCheck(deadline: .minutes(3)", with: "HealthCheck(deadline: .seconds(8)")
            .write(to: pipelineFile, atomically: true, encoding: .utf8)

        func git(_ arguments: String...) throws -> String {
            let result = try runProcess(URL(filePath: "/usr/bin/git"), ["-c", "user.name=Dev", "-c", "user.email=dev@example.com"] + arguments, in: app)
            #expect(result.status == 0, "git \(arguments): \(result.stderr)")
            return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func commit(_ message: String, _ change: () throws -> Void) throws -> String {
            try change()
            _ = try git("commit", "-qam", message)
            return try git("rev-parse", "HEAD")
        }
        func version(_ text: String) throws {
            try "user-service \(text)\n".write(to: app.appending(path: "services/user-service/version.txt"), atomically: true, encoding: .utf8)
        }
        let home = folder.url.appending(path: "home")
        func pipeline(_ arguments: String..., as user: String? = nil) throws -> ProcessOutput {
            var environment = aws.merging(["PIPELINE_HOME": home.path]) { _, new in new }
            if let user { environment["PIPELINE_APPROVER"] = user }
            return try runProcess(Project.executable, arguments, in: app, environment: environment)
        }
        func outputs(_ run: Int, _ stage: String) throws -> [String: String] {
            try JSONDecoder().decode([String: String].self, from: Data(contentsOf: home.appending(path: "runs/\(run)/outputs/\(stage).json")))
        }

        // Monday: A to staging.
        let a = try commit("user-service A") { try version("A") }
        let runA = try pipeline("run", "staging")
        #expect(runA.status == 0, "\(runA.stdout)\(runA.stderr)")
        let imageA = try #require(try outputs(1, "user-service.push")["image"])
        let digestA = try #require(try outputs(1, "user-service.push")["digest"])
        let revisionA = try #require(try outputs(1, "user-service.register")["taskDefinitionArn"])

        #expect(try outputs(1, "user-service.build")["reused"] == nil, "the first run builds")
        let client = AWSClient(configuration: try AWSConfiguration.resolve(environment: aws))
        let others = ["expense-service", "notification-service", "api-service", "frontend-service"]
        var before: [String: ECS.Service] = [:]
        for service in others { before[service] = try await client.describeService(cluster: "staging-cluster", service: "\(service)-staging") }

        // Tuesday: B to staging. Only user-service changed: only it is built, pushed and rolled out; the other four
        // reuse their images (found by build key), their revisions, and are not touched in ECS.
        let b = try commit("user-service B") { try version("B") }
        let runB = try pipeline("run", "staging")
        #expect(runB.status == 0, "\(runB.stdout)\(runB.stderr)")
        let digestB = try #require(try outputs(2, "user-service.push")["digest"])
        let revisionB = try #require(try outputs(2, "user-service.register")["taskDefinitionArn"])
        #expect(try outputs(2, "user-service.build")["reused"] == nil && digestB != digestA)
        // Its Dockerfile's steps ran: the program was compiled with B's version and passed its self-test (or, when
        // an earlier run on this machine built the same content, buildah's layer cache had the step's result).
        let builtB = try String(contentsOf: home.appending(path: "runs/2/logs/user-service.build.log"), encoding: .utf8)
        #expect(builtB.contains("RUN cc -O2") && builtB.contains("RUN /out/user-service --self-test"), "\(builtB)")
        #expect(builtB.contains("user-service user-service B: self-test passed") || builtB.contains("--> Using cache"), "\(builtB)")
        let platform = try git("rev-list", "--max-parents=0", "HEAD")  // the commit that made the five services
        for service in others {
            let built = try outputs(2, "\(service).build")
            #expect(built["reused"] == (try outputs(1, "\(service).push")["digest"]), "\(service): \(built)")
            let buildLog = try String(contentsOf: home.appending(path: "runs/2/logs/\(service).build.log"), encoding: .utf8)
            #expect(buildLog.contains("\(service) unchanged since \(platform.prefix(7)): image \(built["reused"] ?? "-") reused"), "\(buildLog)")
            #expect(!buildLog.contains("buildah bud"), "\(service) was built: \(buildLog)")
            #expect(try outputs(2, "\(service).push")["digest"] == built["reused"])
            #expect(try outputs(2, "\(service).register")["reused"] == "true")
            let deployLog = try String(contentsOf: home.appending(path: "runs/2/logs/\(service).deploy.log"), encoding: .utf8)
            #expect(deployLog.contains("no UpdateService sent"), "\(service): \(deployLog)")
            let now = try await client.describeService(cluster: "staging-cluster", service: "\(service)-staging")
            #expect(now.taskDefinition == before[service]?.taskDefinition && now.deployments.map(\.id) == before[service]?.deployments.map(\.id),
                    "\(service) was rolled out again: \(now.deployments) after \(before[service]?.deployments ?? [])")
            #expect(FileManager.default.fileExists(atPath: home.appending(path: "runs/2/outputs/\(service).health.json").path), "\(service)'s health is still checked")
        }

        // Wednesday: B merged to main (a merge commit of its own, whose service trees are B's); prod waits at its
        // gate, is rejected, runs again and is approved.
        _ = try git("checkout", "-q", "main")
        _ = try git("merge", "-q", "--no-ff", "-m", "Merge staging into main", b)
        let merged = try git("rev-parse", "HEAD")
        _ = try git("checkout", "-q", "staging")
        #expect(merged != b)
        // Since staging verified B, user-service's key tag was moved (a later forced build, or by hand): prod takes
        // exactly the digest staging verified, whatever the tag names.
        let keyB = try #require(try outputs(2, "user-service.build")["key"])
        let movedTag = try pipeline("image", "push", home.appending(path: "runs/1/artifacts/expense-service.build/image").path, "sv-user:build-\(keyB.prefix(40))", "--force")
        #expect(movedTag.status == 0, "\(movedTag.stderr)")
        let foreignDigest = movedTag.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let waiting = try pipeline("run", "prod", as: "dave")
        #expect(waiting.status == 4, "\(waiting.stdout)\(waiting.stderr)")
        #expect(waiting.stdout.contains("run 3 waits for approval at release: Deploy prod from the main branch"))
        let status = try pipeline("status", "3")
        #expect(status.stdout.contains("user-service") && status.stdout.contains(String(merged.prefix(12))) && status.stdout.contains(String(digestB.prefix(19))), "\(status.stdout)")
        // The gate shows what the run would change (worked out when it stopped there), in text and in its JSON.
        #expect(status.stdout.contains("what it would change (as of when it stopped here"), "\(status.stdout)")
        #expect(status.stdout.contains("  image   ") && status.stdout.contains("→ \(digestB)"), "\(status.stdout)")
        let waitingJSON = try #require(try JSONSerialization.jsonObject(with: Data(try pipeline("status", "3", "--json").stdout.utf8)) as? [String: Any])
        let gateChanges = try #require(waitingJSON["changes"] as? [[String: Any]], "\(waitingJSON)")
        #expect(gateChanges.count == 5 && gateChanges.first { $0["service"] as? String == "user-service" }?["newDigest"] as? String == digestB, "\(gateChanges)")
        #expect(try pipeline("reject", "prod", "--reason", "wait for the release notes", as: "bob").status == 0)
        // The moving tag follows what prod runs: a run that stopped at the gate and was rejected moved nothing.
        func tagged(_ reference: String) throws -> String? {
            let host = String(aws["PIPELINE_REGISTRY"]!.dropFirst("http://".count))
            let served = try runProcess(
                URL(filePath: "/usr/bin/skopeo"),
                ["inspect", "--raw", "--tls-verify=false", "--creds", "AWS:123456789012-auth-token", "docker://\(host)/\(reference)"])
            return served.status == 0 ? "sha256:" + SHA256.hash(Data(served.stdout.utf8)).hexString : nil
        }
        #expect(try tagged("sv-user:prod") == nil, "prod's tag was moved by a run prod rejected")
        #expect(try pipeline("run", "prod", as: "dave").status == 4)
        let approved = try pipeline("approve", "prod", "--comment", "notes are out", as: "alice")
        #expect(approved.status == 0, "\(approved.stdout)\(approved.stderr)")
        #expect(approved.stdout.contains("run 4 succeeded"), "\(approved.stdout)")
        // prod requires what it deploys to be verified in staging: it built nothing and took staging's images.
        for service in ["user-service"] + others {
            let log = try String(contentsOf: home.appending(path: "runs/4/logs/\(service).build.log"), encoding: .utf8)
            #expect(log.contains("verified in staging, promoted as it is; nothing built") && !log.contains("bud"), "\(service): \(log)")
            #expect(try outputs(4, "\(service).push")["digest"] == (try outputs(2, "\(service).push")["digest"]), "\(service)")
        }
        #expect(try tagged("sv-user:prod") == digestB && tagged("sv-user:staging") == digestB)
        let promotedLog = try String(contentsOf: home.appending(path: "runs/4/logs/user-service.build.log"), encoding: .utf8)
        #expect(promotedLog.contains("names \(foreignDigest) now (a later build); \(digestB), which staging verified, is what goes out"), "\(promotedLog)")

        // Thursday: C breaks user-service's health check; the run puts it back on B by itself.
        let templateFile = app.appending(path: "pipelines/taskdefs/user-service.json")
        let c = try commit("user-service C") {
            try version("C")
            let template = try String(contentsOf: templateFile, encoding: .utf8)
            try template.replacingOccurrences(
                of: "\"environment\": [", with: "\"environment\": [\n        {\"name\": \"LOCAL_HEALTH\", \"value\": \"failing\"},"
            ).write(to: templateFile, atomically: true, encoding: .utf8)
        }
        let broken = try pipeline("run", "staging")
        #expect(broken.status == 1, "\(broken.stdout)")
        #expect(broken.stdout.contains("run 5 failed and was rolled back"), "\(broken.stdout)")
        // C never passed staging: prod refuses it before anything changes, naming what staging last verified.
        _ = try git("branch", "-f", "main", c)
        let unverified = try pipeline("run", "prod", as: "dave")
        #expect(unverified.status == 2, "\(unverified.stdout)\(unverified.stderr)")
        #expect(unverified.stderr.contains("prod deploys only images staging verified; nothing was started"), "\(unverified.stderr)")
        #expect(unverified.stderr.contains("user-service: what \(c.prefix(7)) builds it from") && unverified.stderr.contains("staging last verified \(digestB)"),
                "\(unverified.stderr)")
        #expect(!unverified.stderr.contains("expense-service"), "the unchanged services were verified: \(unverified.stderr)")
        // pipeline diff says so too, and shows the digests a run would take.
        let refusedDiff = try pipeline("diff", "prod")
        #expect(refusedDiff.status == 0 && refusedDiff.stdout.contains("a run of prod at \(c.prefix(12)) would be refused now, and change nothing:"), "\(refusedDiff.stdout)")
        #expect(refusedDiff.stdout.contains("user-service: what \(c.prefix(7)) builds it from") && !refusedDiff.stdout.contains("  expense-service: what"), "\(refusedDiff.stdout)")
        _ = try git("branch", "-f", "main", merged)

        // What a run of staging's tip (C) would change now that staging is back on B: user-service's commit, image
        // and definition (C's template adds LOCAL_HEALTH); the other four left as they are.
        let diff = try pipeline("diff", "staging")
        #expect(diff.status == 0, "\(diff.stdout)\(diff.stderr)")
        #expect(diff.stdout.contains("user-service\n  commit  \(b.prefix(7)) → \(c.prefix(7))\n    \(c.prefix(7)) Dev: user-service C"), "\(diff.stdout)")
        #expect(diff.stdout.contains("  image   \(digestB) → sha256:") && !diff.stdout.contains("to be built"), "\(diff.stdout)")
        #expect(diff.stdout.contains("+           \"name\" : \"LOCAL_HEALTH\","), "\(diff.stdout)")
        #expect(diff.stdout.contains("-       \"image\" : \"\(imageA.split(separator: "@")[0])@\(digestB)\",\n    +       \"image\" : "), "\(diff.stdout)")
        #expect(diff.stdout.contains("unchanged, and left as they are: expense-service, notification-service, api-service, frontend-service"), "\(diff.stdout)")
        // With AWS out of reach, the comparison is incomplete: exit 1, and it says so, instead of "everything changes".
        var unreachable = aws.merging(["PIPELINE_HOME": home.path, "AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_MAX_ATTEMPTS": "1"]) { _, new in new }
        unreachable["AWS_ENDPOINT_URL_ROUTE_53"] = "http://127.0.0.1:1"
        let blind = try await runProcess(Project.executable, ["diff", "staging", "--json"], in: app, environment: unreachable)
        #expect(blind.status == 1 && blind.stderr.contains("the comparison is incomplete for user-service"), "\(blind.stdout)\(blind.stderr)")
        #expect(blind.stdout.contains("\"incomplete\" : true") && !blind.stdout.contains("\"unchanged\" : true"), "\(blind.stdout)")
        let diffJSON = try #require(try JSONSerialization.jsonObject(with: Data(try pipeline("diff", "staging", "--json").stdout.utf8)) as? [String: Any])
        let changes = try #require(diffJSON["services"] as? [[String: Any]])
        #expect(changes.map { $0["unchanged"] as? Bool } == [false, true, true, true, true], "\(changes)")
        // A changed DNS target (the environment's load balancer, in the working copy's pipeline) shows per record.
        let environments = app.appending(path: "pipelines/Environments.swift")
        let original = try String(contentsOf: environments, encoding: .utf8)
        try original.replacingOccurrences(of: "staging-alb.us-east-1", with: "staging-alb-2.us-east-1").write(to: environments, atomically: true, encoding: .utf8)
        let dnsDiff = try pipeline("diff", "staging")
        try original.write(to: environments, atomically: true, encoding: .utf8)
        #expect(dnsDiff.stdout.contains("  dns     expense.staging.comyno.net CNAME: staging-alb.us-east-1.elb.amazonaws.com → staging-alb-2.us-east-1.elb.amazonaws.com"), "\(dnsDiff.stdout)")
        #expect(!dnsDiff.stdout.contains("expense-service: unchanged"), "\(dnsDiff.stdout)")

        // Friday: user-service on staging back to A.
        let rollback = try pipeline("rollback", "user-service", "--env", "staging", "--to", String(a.prefix(7)), "--yes")
        #expect(rollback.status == 0, "\(rollback.stdout)\(rollback.stderr)")
        // Staging's moving tag follows it back to A's image.
        #expect(try tagged("sv-user:staging") == digestA, "\(rollback.stdout)")

        // The story, as the runner tells it.
        let history = try pipeline("history").stdout.split(separator: "\n").dropFirst().map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        #expect(history.map { "\($0[0]) \($0[1]) \($0[2])" } == [
            "6 staging succeeded", "5 staging rolled-back", "4 prod succeeded", "3 prod failed", "2 staging succeeded", "1 staging succeeded",
        ], "\(history)")
        let staging = try pipeline("deployments", "user-service", "--env", "staging").stdout.split(separator: "\n").dropFirst()
            .map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        #expect(staging.map { "\($0[3]) \($0[4]) \($0[7])" } == [
            "rollback \(a.prefix(12)) 6", "rollback \(b.prefix(12)) 5", "deploy \(b.prefix(12)) 2", "deploy \(a.prefix(12)) 1",
        ], "\(staging)")
        let prod = try pipeline("deployments", "user-service", "--env", "prod").stdout
        let prodRows = prod.split(separator: "\n").dropFirst().map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        #expect(prodRows.map { "\($0[3]) \($0[4]) \($0[5]) \($0[7]) \($0[9])" } == ["deploy \(merged.prefix(12)) \(digestB.prefix(19)) 4 alice"], "\(prod)")
        #expect(!prod.contains(String(c.prefix(12))))

        // The AWS side, in moto.
        #expect(try await client.describeService(cluster: "staging-cluster", service: "user-service-staging").taskDefinition == revisionA)
        let imagesA = try await client.describeTaskDefinition(revisionA).images
        #expect(imagesA == [imageA], "\(imagesA) vs \(imageA)")
        let prodService = try await client.describeService(cluster: "production-cluster", service: "user-service")
        let prodImages = try await client.describeTaskDefinition(prodService.taskDefinition).images
        #expect(prodImages.first?.hasSuffix("@\(digestB)") == true, "\(prodImages) vs \(digestB)")
        #expect(prodService.taskDefinition != revisionB)  // prod has its own family
        let zone = try #require(try await client.hostedZone(named: "staging.comyno.net"))
        let record = try await client.recordSet(zone: zone.id, name: "user.staging.comyno.net", type: "CNAME")
        #expect(record?.values == ["staging-alb.us-east-1.elb.amazonaws.com"])

        // The registry side, through skopeo: what was pushed for A and B is what the registry serves.
        let host = String(aws["PIPELINE_REGISTRY"]!.dropFirst("http://".count))
        for (sha, digest) in [(a, digestA), (b, digestB)] {
            let served = try await runProcess(
                URL(filePath: "/usr/bin/skopeo"),
                ["inspect", "--raw", "--tls-verify=false", "--creds", "AWS:123456789012-auth-token", "docker://\(host)/sv-user:\(sha)"])
            #expect(served.status == 0, "\(served.stderr)")
            #expect("sha256:" + SHA256.hash(Data(served.stdout.utf8)).hexString == digest)
        }
    }
}
