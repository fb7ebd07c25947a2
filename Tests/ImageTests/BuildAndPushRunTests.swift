import AWS
import Foundation
import Hashing
import Testing
import TestSupport

/// Images through the CLI against the local stand-ins: `pipeline image push`, and `pipeline run` building with
/// buildah and pushing to the local registry with ECR's credentials from moto.
@Suite struct BuildAndPushRunTests {
    var registryHost: String { String(LocalAWS.environment["PIPELINE_REGISTRY"]!.dropFirst("http://".count)) }
    let ecrCredentials = "AWS:123456789012-auth-token"

    func served(_ reference: String) throws -> String {
        let result = try skopeo(["inspect", "--raw", "--tls-verify=false", "--creds", ecrCredentials, "docker://\(registryHost)/\(reference)"])
        return result.status == 0 ? "sha256:" + SHA256.hash(Data(result.stdout.utf8)).hexString : "missing: \(result.stderr)"
    }

    @Test func imagePushPrintsTheDigestAndRefusesToMoveATag() throws {
        let first = ImageFixture.image(seed: 101)
        let second = ImageFixture.image(seed: 102)
        let tag = "cli-\(UUID().uuidString.prefix(8))"
        let pushed = try runProcess(Project.executable, ["image", "push", first.folder.path, "sv-expense:\(tag)"], environment: LocalAWS.environment)
        #expect(pushed.status == 0, "\(pushed.stderr)")
        #expect(pushed.stdout == "\(first.digest)\n")
        #expect(pushed.stderr.contains("3 blobs uploaded"))
        #expect(try served("sv-expense:\(tag)") == first.digest)

        let moved = try runProcess(Project.executable, ["image", "push", second.folder.path, "sv-expense:\(tag)"], environment: LocalAWS.environment)
        #expect(moved.status == 2)
        #expect(moved.stderr.contains("already points at \(first.digest)"), "\(moved.stderr)")
        #expect(try served("sv-expense:\(tag)") == first.digest)

        let missing = try runProcess(Project.executable, ["image", "push", "/nonexistent", "sv-expense:x"], environment: LocalAWS.environment)
        #expect(missing.status == 2 && missing.stderr.contains("/nonexistent does not exist"))

        let noRepository = try runProcess(Project.executable, ["image", "push", first.folder.path, "no-such-repo:x"], environment: LocalAWS.environment)
        #expect(noRepository.status == 1)
        #expect(noRepository.stderr.contains("the ECR repository no-such-repo does not exist"), "\(noRepository.stderr)")

        var wrong = LocalAWS.environment
        wrong["PIPELINE_REGISTRY_USERNAME"] = "AWS"
        wrong["PIPELINE_REGISTRY_PASSWORD"] = "not-the-token"
        let refused = try runProcess(Project.executable, ["image", "push", second.folder.path, "sv-expense:other"], environment: wrong)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("refused the credentials") && !refused.stderr.contains("not-the-token"), "\(refused.stderr)")
    }

    @Test func imagePushToANamedRegistryNeedsNoAWSAndRefusesPlainHTTPElsewhere() throws {
        let registry = try LocalRegistry()
        let fixture = ImageFixture.image(seed: 111)
        // No AWS settings at all: a named registry is not ECR.
        let pushed = try runProcess(
            Project.executable, ["image", "push", fixture.folder.path, "plain/app:v1", "--registry", registry.url],
            environment: ["AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_EC2_METADATA_DISABLED": "true"])
        #expect(pushed.status == 0, "\(pushed.stderr)")
        #expect(pushed.stdout == "\(fixture.digest)\n")
        let remote = try runProcess(
            Project.executable, ["image", "push", fixture.folder.path, "plain/app:v1", "--registry", "http://registry.example.com:5000"])
        #expect(remote.status == 1 && remote.stderr.contains("is plain HTTP and not on this machine"), "\(remote.stderr)")
    }

    /// A repository with pipelines and two services, each with a Dockerfile buildah can build here (FROM scratch).
    func project(
        dockerfile: String = "FROM scratch\nARG GREETING\nCOPY app.txt /app.txt\nLABEL greeting=$GREETING\n", apiBuilder: String = "buildah",
        chain: String = "BuildImage()\n        PushImage()\n        RegisterTaskDefinition()"
    ) throws -> (GitFixture, URL) {
        let project = GitFixture()
        try FileManager.default.createDirectory(at: project.root.appending(path: "repo"), withIntermediateDirectories: true)
        try project.git(["init", "-q", "-b", "main"], in: "repo")
        project.folder.write(
            "repo/pipelines/Pipeline.swift",
            """
            import PipelineDSL

            Pipeline("images", parallelism: 4) {
                Environment("staging", branch: "main", region: "us-east-1", cluster: "staging-cluster")
                    .serviceName("{service}-images")
                    .variables(["LOG_LEVEL": "debug", "EXECUTION_ROLE": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"])
                Service("user-service", repository: "sv-user", port: 5000, protocol: .http)
                    .build(context: "services/user", arguments: ["GREETING": "hello", "REVISION": "{shortSha}"])
                Service("api-service", repository: "sv-core-api", port: 5003, protocol: .http)
                    .build(context: "services/api", builder: "\(apiBuilder)")
                Checkout()
                EachService {
                    \(chain)
                }
            }
            """)
        // Content of its own too: the registry is shared, and an image is found by what it is built from.
        let id = UUID().uuidString
        for service in ["user", "api"] {
            project.folder.write("repo/services/\(service)/Dockerfile", dockerfile)
            project.folder.write("repo/services/\(service)/app.txt", "the \(service) service \(id)\n")
        }
        try FileManager.default.copyItem(
            at: Project.root.appending(path: "pipelines/taskdefs"), to: project.root.appending(path: "repo/pipelines/taskdefs"))
        // A commit of its own: two tests committing the same files in the same second would share a SHA, and so the
        // SHA tags they push to the shared registry (which are immutable).
        project.folder.write("repo/fixture-id", UUID().uuidString)
        try project.git(["add", "."], in: "repo")
        try project.git(["commit", "-qm", "two services"], in: "repo")
        return (project, project.root.appending(path: "repo"))
    }

    func outputs(_ home: TemporaryDirectory, _ run: Int, _ stage: String) throws -> [String: String] {
        try JSONDecoder().decode([String: String].self, from: Data(contentsOf: home.url.appending(path: "runs/\(run)/outputs/\(stage).json")))
    }

    /// A layer cache in the registry: what one host built, another (a buildah storage of its own, empty) pulls
    /// instead of building, and the image is the same. The registry's credentials reach buildah in an auth file
    /// that is gone when the stage ends, and never reach the log. A cache repository that cannot be used slows the
    /// build down and fails nothing; a name that is no repository name is refused with the plan.
    @Test func aLayerCacheInTheRegistryServesAnotherHost() async throws {
        let (project, repo) = try project(
            dockerfile: "FROM scratch\nCOPY app.txt /app.txt\nCOPY app.txt /copy.txt\n",
            chain: "BuildImage(cacheRepository: \"{repository}-cache\")\n        PushImage()")
        let home = TemporaryDirectory()
        let environment = LocalAWS.environment.merging(["PIPELINE_HOME": home.url.path]) { _, new in new }
        // The plan says how each image is built.
        let plan = try await runProcess(Project.executable, ["plan", "staging"], in: repo, environment: environment)
        #expect(plan.stdout.contains("(arguments GREETING=hello REVISION={shortSha}; layer cache in sv-user-cache)"), "\(plan.stdout)")
        let built = try await runProcess(Project.executable, ["run", "staging"], in: repo, environment: environment)
        #expect(built.status == 0, "\(built.stdout)\(built.stderr)")
        let log = try String(contentsOf: home.url.appending(path: "runs/1/logs/user-service.build.log"), encoding: .utf8)
        #expect(log.contains("layer cache: \(registryHost)/sv-user-cache") && log.contains("Pushing cache \(registryHost)/sv-user-cache:"), "\(log)")
        #expect(!log.contains("auth-token") && !log.contains(Data(ecrCredentials.utf8).base64EncodedString()), "\(log)")
        let authFile = try #require(log.firstMatch(of: /--authfile (\S+)/).map { String($0.1) }, "\(log)")
        #expect(!FileManager.default.fileExists(atPath: authFile) && !FileManager.default.fileExists(atPath: URL(filePath: authFile).deletingLastPathComponent().path))
        let first = try #require(try outputs(home, 1, "user-service.push")["digest"])

        // Another host: a buildah storage of its own, with nothing in it.
        let storage = TemporaryDirectory()
        storage.write("storage.conf", "[storage]\ndriver = \"vfs\"\ngraphroot = \"\(storage.url.path)/graph\"\nrunroot = \"\(storage.url.path)/run\"\n")
        let otherHost = environment.merging(["CONTAINERS_STORAGE_CONF": storage.url.appending(path: "storage.conf").path]) { _, new in new }
        let again = try await runProcess(Project.executable, ["run", "staging", "--rebuild"], in: repo, environment: otherHost)
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        let pulled = try String(contentsOf: home.url.appending(path: "runs/2/logs/user-service.build.log"), encoding: .utf8)
        #expect(pulled.contains("Cache pulled from remote \(registryHost)/sv-user-cache:"), "\(pulled)")
        #expect(try outputs(home, 2, "user-service.push")["digest"] == first)

        // A cache repository that does not exist: said, and the build goes on without it.
        let (other, elsewhere) = try self.project(chain: "BuildImage(cacheRepository: \"{service}-nowhere\")\n        PushImage()")
        let missing = try await runProcess(Project.executable, ["run", "staging"], in: elsewhere, environment: environment)
        #expect(missing.status == 0, "\(missing.stdout)\(missing.stderr)")
        let without = try String(contentsOf: home.url.appending(path: "runs/3/logs/user-service.build.log"), encoding: .utf8)
        #expect(without.contains("the layer cache in user-service-nowhere cannot be used") && without.contains("building with this host's cache only"), "\(without)")
        #expect(without.contains("the ECR repository user-service-nowhere does not exist"), "\(without)")

        // Not a repository name: the plan is refused before anything runs.
        let (refusedProject, wrong) = try self.project(chain: "BuildImage(cacheRepository: \"Cache Here\")\n        PushImage()")
        let refused = try await runProcess(Project.executable, ["run", "staging"], in: wrong, environment: environment)
        #expect(refused.status == 2 && refused.stderr.contains("cacheRepository 'Cache Here' is not a repository name"), "\(refused.stdout)\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: home.url.appending(path: "runs/4").path))
        withExtendedLifetime((project, other, refusedProject, storage)) {}  // Their folders live as long as the test.
    }

    @Test func aBuildThatFailsLeavesNoKeyTagBehind() async throws {
        let (project, repo) = try project(dockerfile: "FROM scratch\nCOPY not-in-the-context.txt /x\n")
        let home = TemporaryDirectory()
        let environment = LocalAWS.environment.merging(["PIPELINE_HOME": home.url.path]) { _, new in new }
        let result = try await runProcess(Project.executable, ["run", "staging"], in: repo, environment: environment)
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        let log = try String(contentsOf: home.url.appending(path: "runs/1/logs/user-service.build.log"), encoding: .utf8)
        let tag = try #require(log.range(of: "no tag ").map { String(log[$0.upperBound...].prefix(46)) }, "\(log)")
        #expect(tag.hasPrefix("build-") && tag.count == 46, "\(log)")
        #expect(try served("sv-user:\(tag)").hasPrefix("missing"), "a failed build left its key tag \(tag)")
        withExtendedLifetime(project) {}
    }

    @Test func aRunBuildsWithBuildahPushesWithECRAuthAndRegistersByDigest() async throws {
        let (project, repo) = try project()
        let sha = try project.sha("HEAD", in: "repo")
        let home = TemporaryDirectory()
        let environment = LocalAWS.environment.merging(["PIPELINE_HOME": home.url.path]) { _, new in new }
        let result = try await runProcess(Project.executable, ["run", "staging"], in: repo, environment: environment)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")

        let client = AWSClient(configuration: try AWSConfiguration.resolve(environment: LocalAWS.environment))
        for (service, repository) in [("user-service", "sv-user"), ("api-service", "sv-core-api")] {
            let pushed = try outputs(home, 1, "\(service).push")
            let digest = try #require(pushed["digest"])
            #expect(pushed["image"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/\(repository)@\(digest)")
            #expect(try served("\(repository):\(sha)") == digest)
            let registered = try #require(try outputs(home, 1, "\(service).register")["taskDefinitionArn"])
            #expect(try await client.describeTaskDefinition(registered).images == [pushed["image"]!])
        }
        let log = try String(contentsOf: home.url.appending(path: "runs/1/logs/user-service.build.log"), encoding: .utf8)
        #expect(log.contains("--build-arg GREETING=hello") && log.contains("--build-arg REVISION=\(sha.prefix(12))"), "\(log)")
        #expect(log.contains("STEP 2/4: ARG GREETING") || log.contains("ARG GREETING"), "\(log)")

        // The same commit again: the registry has the image of its build key, so nothing is built or sent.
        let first = try #require(try outputs(home, 1, "user-service.push")["digest"])
        #expect(try served("sv-user:build-\(try #require(try outputs(home, 1, "user-service.build")["key"]).prefix(40))") == first)
        let again = try await runProcess(Project.executable, ["run", "staging"], in: repo, environment: environment)
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        #expect(try outputs(home, 2, "user-service.build")["reused"] == first)
        #expect(try outputs(home, 2, "user-service.push")["digest"] == first)
        let pushLog = try String(contentsOf: home.url.appending(path: "runs/2/logs/user-service.push.log"), encoding: .utf8)
        #expect(pushLog.contains("pushed nothing: the image \(first) is in"), "\(pushLog)")

        // --rebuild builds it anyway: the same content stamped with the time of the commit that last changed it is
        // the same image, so nothing is sent and its immutable SHA tag takes it.
        let rebuilt = try await runProcess(Project.executable, ["run", "staging", "--rebuild"], in: repo, environment: environment)
        #expect(rebuilt.status == 0, "\(rebuilt.stdout)\(rebuilt.stderr)")
        let buildLog = try String(contentsOf: home.url.appending(path: "runs/3/logs/user-service.build.log"), encoding: .utf8)
        #expect(buildLog.contains("the run was started with --rebuild") && buildLog.contains("bud --layers"), "\(buildLog)")
        #expect(try outputs(home, 3, "user-service.build")["reused"] == nil)
        #expect(try outputs(home, 3, "user-service.push")["digest"] == first)
        let pushedAgain = try String(contentsOf: home.url.appending(path: "runs/3/logs/user-service.push.log"), encoding: .utf8)
        #expect(pushedAgain.contains("0 blobs uploaded"), "\(pushedAgain)")

        // A key tag naming a wrong image (moved by hand to user-service's image, built by the pipeline from another
        // key): an ordinary run does not take it (its label names the other key), builds the right one and moves
        // the tag back.
        let apiKeyTag = "build-" + (try #require(try outputs(home, 1, "api-service.build")["key"])).prefix(40)
        let apiDigest = try #require(try outputs(home, 1, "api-service.push")["digest"])
        let userLayout = home.url.appending(path: "runs/1/artifacts/user-service.build/image")
        let moved = try await runProcess(
            Project.executable, ["image", "push", userLayout.path, "sv-core-api:\(apiKeyTag)", "--force"], environment: LocalAWS.environment)
        let movedTo = try served("sv-core-api:\(apiKeyTag)")
        #expect(moved.status == 0 && movedTo == first, "\(moved.stderr)")
        let repaired = try await runProcess(Project.executable, ["run", "staging"], in: repo, environment: environment)
        #expect(repaired.status == 0, "\(repaired.stdout)\(repaired.stderr)")
        let refusedLog = try String(contentsOf: home.url.appending(path: "runs/4/logs/api-service.build.log"), encoding: .utf8)
        let userKey = try #require(try outputs(home, 1, "user-service.build")["key"])
        #expect(refusedLog.contains("names \(first), which says it was built from build key \(userKey.prefix(12)): not taken; building"), "\(refusedLog)")
        #expect(try outputs(home, 4, "api-service.build")["reused"] == nil)
        #expect(try outputs(home, 4, "user-service.build")["reused"] == first, "the untouched service is still reused")
        let repairLog = try String(contentsOf: home.url.appending(path: "runs/4/logs/api-service.push.log"), encoding: .utf8)
        #expect(repairLog.contains("moved sv-core-api:\(apiKeyTag) from \(first) to \(apiDigest)"), "\(repairLog)")
        #expect(try served("sv-core-api:\(apiKeyTag)") == apiDigest)
        withExtendedLifetime(project) {}
    }

    /// Custom ids with dots and dashes pass outputs along the chain (one mapping from id to file on both sides);
    /// `{shortSha}` is filled in; the environment's tag moves to each new image while SHA tags never do.
    @Test func customIdsShortShaTagsAndAMovingEnvironmentTag() async throws {
        // Its own moving tag: other tests push sv-user to the same registry at the same time.
        let moving = "t\(UUID().uuidString.prefix(8).lowercased())"
        let (project, repo) = try project(
            chain: """
                BuildImage().id("image.build-1")
                        PushImage(extraTags: ["{shortSha}"], movingTags: ["{env}-\(moving)"]).id("ecr.push-1")
                        RegisterTaskDefinition().id("task-def.v2")
                """)
        let home = TemporaryDirectory()
        let environment = LocalAWS.environment.merging(["PIPELINE_HOME": home.url.path]) { _, new in new }
        var digests: [String] = []
        for round in 1...2 {
            if round == 2 {
                project.folder.write("repo/services/user/app.txt", "the user service, changed\n")
                try project.git(["commit", "-qam", "change"], in: "repo")
            }
            let sha = try project.sha("HEAD", in: "repo")
            let result = try await runProcess(Project.executable, ["run", "staging", "--only", "user-service"], in: repo, environment: environment)
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            let pushed = try outputs(home, round, "user-service.ecr.push-1")
            let digest = try #require(pushed["digest"])
            digests.append(digest)
            #expect(pushed["tags"] == "\(sha),\(sha.prefix(12)),staging-\(moving)")
            #expect(try served("sv-user:\(sha)") == digest)
            #expect(try served("sv-user:\(sha.prefix(12))") == digest)
            #expect(try served("sv-user:staging-\(moving)") == digest)
            #expect(try outputs(home, round, "user-service.task-def.v2")["image"] == pushed["image"])
        }
        #expect(digests[0] != digests[1])
        withExtendedLifetime(project) {}
    }

    @Test func aFailingBuildShowsTheBuildersLastLines() throws {
        let (project, repo) = try project(dockerfile: "FROM scratch\nCOPY missing-file.txt /x\n")
        let home = TemporaryDirectory()
        let result = try runProcess(
            Project.executable, ["run", "staging", "--only", "api-service"], in: repo,
            environment: LocalAWS.environment.merging(["PIPELINE_HOME": home.url.path]) { _, new in new })
        #expect(result.status == 1)
        #expect(result.stdout.contains("api-service.build failed"), "\(result.stdout)")
        let log = try String(contentsOf: home.url.appending(path: "runs/1/logs/api-service.build.log"), encoding: .utf8)
        #expect(log.contains("buildah bud failed with exit status"), "\(log)")
        #expect(log.contains("missing-file.txt"), "\(log)")
        #expect(result.stdout.contains("api-service.push") && !FileManager.default.fileExists(atPath: home.url.appending(path: "runs/1/outputs/api-service.push.json").path))
        withExtendedLifetime(project) {}
    }

    @Test func aMissingBuilderIsNamed() throws {
        // podman is not installed on these machines.
        let (project, repo) = try project(apiBuilder: "podman")
        let home = TemporaryDirectory()
        let environment = LocalAWS.environment.merging(["PIPELINE_HOME": home.url.path]) { _, new in new }
        let result = try runProcess(Project.executable, ["run", "staging", "--only", "api-service"], in: repo, environment: environment)
        #expect(result.status == 1, "\(result.stderr)")
        let log = try String(contentsOf: home.url.appending(path: "runs/1/logs/api-service.build.log"), encoding: .utf8)
        #expect(log.contains("the service builds with podman, which is not on PATH"), "\(log)")
        withExtendedLifetime(project) {}
    }
}
