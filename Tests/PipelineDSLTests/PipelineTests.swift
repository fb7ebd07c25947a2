import Foundation
import Testing

@testable import PipelineDSL

private let staging = Environment("staging", branch: "staging", region: "us-east-1", cluster: "staging-cluster")
    .dns(zone: "staging.example.net")
    .serviceName("{service}-staging")
    .variable("LB", "lb.example.net")
private let prod = Environment("prod", branch: "main", region: "us-east-1", cluster: "production-cluster")
    .dns(zone: "example.net")
    .variable("LB", "lb-prod.example.net")
private let services = [
    Service("user-service", repository: "sv-user", port: 5000, protocol: .grpc).healthCheck(.grpc("/user.UserService/Check")),
    Service("api-service", repository: "sv-api", port: 5003, protocol: .http),
]

private func deployPipeline() -> Pipeline {
    Pipeline("demo", handOver: false) {
        staging
        prod
        services
        Checkout()
        EachService {
            BuildImage()
            PushImage()
        }
        Approval("release", approvers: ["alice"]).when(.environment("prod"))
        EachService {
            RegisterTaskDefinition()
            UpdateService()
            DNSRecord(.cname("{var.LB}"))
            HealthCheck()
        }
    }
}

private func stages(_ pipeline: Pipeline, _ env: String) throws -> [String: Stage] {
    let plan = try #require(pipeline.document.plan?.plan(for: env), "errors: \(pipeline.document.errors)")
    return Dictionary(uniqueKeysWithValues: plan.stages.map { ($0.id, $0) })
}

@Suite struct PipelineTests {
    @Test func eachServiceMakesOneChainPerServiceAfterTheCheckout() throws {
        let byID = try stages(deployPipeline(), "staging")
        #expect(byID.count == 1 + 2 * 6)
        #expect(byID["checkout"]?.dependsOn == [])
        #expect(byID["user-service.build"]?.dependsOn == ["checkout"])
        #expect(byID["user-service.push"]?.dependsOn == ["user-service.build"])
        #expect(byID["user-service.health"]?.dependsOn == ["user-service.dns"])
    }

    @Test func consecutiveEachServiceBlocksJoinServiceByService() throws {
        let byID = try stages(deployPipeline(), "staging")
        #expect(byID["user-service.register"]?.dependsOn == ["user-service.push"])
        #expect(byID["api-service.register"]?.dependsOn == ["api-service.push"])
        #expect(byID["release"] == nil)
    }

    @Test func anApprovalForOneEnvironmentGatesEveryServiceThere() throws {
        let byID = try stages(deployPipeline(), "prod")
        #expect(Set(byID["release"]?.dependsOn ?? []) == ["user-service.push", "api-service.push"])
        #expect(byID["user-service.register"]?.dependsOn == ["release"])
        #expect(byID["api-service.register"]?.dependsOn == ["release"])
    }

    @Test func stagesCarryTheEnvironmentAndServiceTheyWereMadeFor() throws {
        let byID = try stages(deployPipeline(), "staging")
        guard case .updateService(let update) = byID["user-service.deploy"]?.spec else {
            Issue.record("no deploy stage")
            return
        }
        #expect(update.cluster == "staging-cluster")
        #expect(update.ecsService == "user-service-staging")
        #expect(update.registerStage == "user-service.register")
        guard case .dnsRecord(let dns) = byID["api-service.dns"]?.spec else {
            Issue.record("no dns stage")
            return
        }
        #expect(dns.name == "api-service.staging.example.net")
        #expect(dns.record.values == ["lb.example.net"])
        guard case .healthCheck(let health) = byID["user-service.health"]?.spec else {
            Issue.record("no health stage")
            return
        }
        #expect(health.probe == .grpc(method: "/user.UserService/Check"))
        #expect(health.port == 5000)
        guard case .push(let push) = byID["api-service.push"]?.spec else {
            Issue.record("no push stage")
            return
        }
        #expect(push.repository == "sv-api")
        #expect(push.tags == ["{sha}"])
        #expect(push.buildStage == "api-service.build")
    }

    @Test func optionsReachThePlan() throws {
        let pipeline = Pipeline("demo", handOver: false) {
            staging
            Shell("migrate", "./migrate.sh")
                .timeout(.minutes(3))
                .retries(2, backoff: .seconds(10))
                .when(.branch("staging"))
                .secret("DB_PASSWORD", .secretsManager("arn:aws:secretsmanager:us-east-1:1:secret:db", key: "password"))
                .env("MODE", "fast")
        }
        let stage = try #require(try stages(pipeline, "staging")["migrate"])
        #expect(stage.timeoutSeconds == 180)
        #expect(stage.retry == RetryPolicy(attempts: 2, backoffSeconds: 10))
        #expect(stage.condition == .branch(["staging"]))
        #expect(stage.secrets == [SecretBinding(name: "DB_PASSWORD", reference: .secretsManager("arn:aws:secretsmanager:us-east-1:1:secret:db", key: "password"))])
        #expect(stage.environment == ["MODE": "fast"])
    }

    @Test func theRepositoryAndWhereItsTokenLivesReachThePlan() throws {
        let pipeline = Pipeline(
            "demo", repository: "https://git.example.com/team/app.git", token: .secretsManager("ci/git", key: "token"),
            handOver: false
        ) {
            staging
            Checkout()
        }
        let plan = try #require(pipeline.document.plan?.plan(for: "staging"), "errors: \(pipeline.document.errors)")
        #expect(plan.source == Source(repository: "https://git.example.com/team/app.git", token: .secretsManager("ci/git", key: "token")))
        let decoded = try JSONDecoder().decode(Plan.self, from: JSONEncoder().encode(plan))
        #expect(decoded.source.token == .secretsManager("ci/git", key: "token"))
        // A plan written before sources had tokens still reads.
        #expect(try JSONDecoder().decode(Source.self, from: Data(#"{"repository": "/srv/app"}"#.utf8)) == Source(repository: "/srv/app"))
    }

    @Test func explicitDependenciesAndParallelStages() throws {
        let pipeline = Pipeline("demo", handOver: false) {
            staging
            services
            Parallel {
                Shell("lint", "make lint")
                Shell("unit", "make test")
            }
            EachService {
                Shell("smoke", "./smoke.sh").dependsOn("lint")
            }
            Shell("report", "./report.sh").dependsOn("unit")
        }
        let byID = try stages(pipeline, "staging")
        #expect(byID["lint"]?.dependsOn == [])
        #expect(Set(byID["user-service.smoke"]?.dependsOn ?? []) == ["lint", "unit"])
        #expect(Set(byID["report"]?.dependsOn ?? []) == ["user-service.smoke", "api-service.smoke", "unit"])
    }

    @Test func eachServiceCanLookAtTheService() throws {
        let pipeline = Pipeline("demo", handOver: false) {
            staging
            services
            EachService { service in
                if service.protocol == .grpc {
                    Shell("proto", "buf lint")
                }
                BuildImage()
            }
        }
        let byID = try stages(pipeline, "staging")
        #expect(byID["user-service.proto"] != nil)
        #expect(byID["api-service.proto"] == nil)
        #expect(byID["user-service.build"]?.dependsOn == ["user-service.proto"])
    }

    @Test func anEnvironmentPromotesOnlyFromAnotherThatExists() throws {
        let promoted = Pipeline("demo", handOver: false) {
            staging
            Environment("prod", branch: "main", region: "us-east-1", cluster: "prod").requiresVerified(in: "staging")
        }
        #expect(promoted.document.errors.isEmpty, "\(promoted.document.errors)")
        #expect(promoted.document.plan?.environments.first { $0.name == "prod" }?.verifiedIn == "staging")
        let wrong = Pipeline("demo", handOver: false) {
            Environment("qa", branch: "qa", region: "us-east-1", cluster: "qa").requiresVerified(in: "qa")
            Environment("prod", branch: "main", region: "us-east-1", cluster: "prod").requiresVerified(in: "stagign")
        }
        #expect(wrong.document.errors.contains("environment 'qa' requires what it deploys to be verified in itself: name another environment in requiresVerified(in:)"))
        #expect(wrong.document.errors.contains("environment 'prod' requires verification in 'stagign', which the pipeline does not declare (it has qa, prod)"))
    }

    @Test func buildSettingsAreCheckedWithThePlan() throws {
        let good = Pipeline("demo", handOver: false) {
            staging
            Service("user-service", repository: "sv-user", port: 5000, protocol: .http)
                .build(context: "services/user", arguments: ["REVISION": "{sha}", "ENV": "{env}", "SHORT": "{shortSha}"])
            EachService { BuildImage(cacheRepository: "build-cache/{repository}") }
        }
        #expect(good.document.errors.isEmpty, "\(good.document.errors)")
        guard case .build(let spec)? = good.document.plan?.stages["staging"]?.first?.spec else {
            Issue.record("no build stage")
            return
        }
        // Plan-time placeholders are filled; {sha} and {shortSha} wait for the run.
        #expect(spec.build.arguments == ["REVISION": "{sha}", "ENV": "staging", "SHORT": "{shortSha}"])
        #expect(spec.cacheRepository == "build-cache/sv-user")

        let wrong = Pipeline("demo", handOver: false) {
            staging
            Service("user-service", repository: "sv-user", port: 5000, protocol: .http)
                .build(context: "services/user", dockerfile: "../../../etc/hostname", arguments: ["RUN_ID": "{run}", "WHO": "{usr}"])
            Service("api-service", repository: "sv-api", port: 5003, protocol: .http).build(context: "../elsewhere")
            EachService { BuildImage(cacheRepository: "Cache Here") }
        }
        let errors = wrong.document.errors
        #expect(errors.contains { $0.contains("build argument RUN_ID uses {run}, which differs from run to run") }, "\(errors)")
        #expect(errors.contains { $0.contains("build argument WHO uses unknown placeholder {usr}") }, "\(errors)")
        #expect(errors.contains { $0.contains("the Dockerfile 'services/user/../../../etc/hostname' leaves the repository") }, "\(errors)")
        #expect(errors.contains { $0.contains("the build context '../elsewhere' leaves the repository") }, "\(errors)")
        #expect(errors.contains { $0.contains("cacheRepository 'Cache Here' is not a repository name") }, "\(errors)")
        #expect(BuildImage.isRepositoryName("a/b-c.d_e") && !BuildImage.isRepositoryName("a//b") && !BuildImage.isRepositoryName("a-") && !BuildImage.isRepositoryName("A"))
    }

    @Test func mistakesAreCollectedAndReportedTogether() {
        let pipeline = Pipeline("demo", handOver: false) {
            staging
            staging
            services
            BuildImage()
            EachService(only: ["billing"]) {
                PushImage()
            }
            EachService {
                DNSRecord(.cname("{var.NOPE}"))
                HealthCheck(host: "{hostnme}")
            }
        }
        let errors = pipeline.document.errors
        #expect(pipeline.document.plan == nil)
        #expect(errors.contains("environment 'staging' is declared twice"))
        #expect(errors.contains { $0.contains("stage 'build'") && $0.contains("inside EachService") })
        #expect(errors.contains { $0.contains("unknown service 'billing'") })
        #expect(errors.contains { $0.contains("{var.NOPE}") && $0.contains(".variable(\"NOPE\"") })
        #expect(errors.contains { $0.contains("stage 'user-service.health'") && $0.contains("{hostnme}") })
    }

    @Test func aPipelineWithoutEnvironmentsIsRefused() {
        let pipeline = Pipeline("demo", handOver: false) { Checkout() }
        #expect(pipeline.document.errors.contains { $0.contains("declares no environment") })
    }

    @Test func aDNSRecordWithoutAZoneSaysWhereToDeclareIt() {
        let bare = Environment("dev", branch: "dev", region: "eu-west-1", cluster: "dev")
        let pipeline = Pipeline("demo", handOver: false) {
            bare
            services
            EachService { DNSRecord(.cname("x")) }
        }
        #expect(pipeline.document.errors.contains { $0.contains(".dns(zone:)") && $0.contains("'dev'") })
    }

    @Test func theManifestSurvivesJSON() throws {
        let manifest = try #require(deployPipeline().document.plan)
        let data = try ManifestOutput.encode(ManifestDocument(errors: [], plan: manifest))
        let decoded = try JSONDecoder().decode(ManifestDocument.self, from: data)
        #expect(decoded.plan == manifest)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"kind\" : \"registerTaskDefinition\""))
        #expect(!text.contains("_0"))
    }
}
