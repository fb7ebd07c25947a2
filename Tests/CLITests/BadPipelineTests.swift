import Foundation
import TestSupport
import Testing

private let header = """
    import PipelineDSL

    let staging = Environment("staging", branch: "staging", region: "us-east-1", cluster: "c").dns(zone: "example.net")
    let api = Service("api-service", repository: "sv-core-api", port: 5003, protocol: .http)

    """

/// Writes `pipelines/Pipeline.swift` with `body` after the shared header, and runs `pipeline plan staging` there.
private func planOf(_ body: String, templates: Bool = true, extra: [String: String] = [:]) throws -> ProcessOutput {
    let folder = TemporaryDirectory()
    folder.write("pipelines/Pipeline.swift", header + body)
    if templates { folder.copyReferenceTemplates() }
    for (path, text) in extra { folder.write(path, text) }
    return try runProcess(
        Project.executable, ["plan", "staging", "--pipelines", "pipelines"], in: folder.url,
        environment: ["PIPELINE_HOME": folder.url.appending(path: ".pipeline").path])
}

/// Each compiles a small pipeline for real, so they run one at a time.
@Suite(.serialized) struct BadPipelineTests {
    @Test func aTypeErrorIsShownAsTheCompilerSaysIt() throws {
        let result = try planOf("Pipeline(\"p\") {\n    staging\n    Shell(\"x\", command: 1)\n}\n")
        #expect(result.status == 2)
        #expect(result.stderr.contains("pipelines/Pipeline.swift:7:10: error: extraneous argument label"), "\(result.stderr)")
        #expect(result.stderr.contains(": error: "))
    }

    @Test func aCycleIsPrinted() throws {
        let result = try planOf(
            """
            Pipeline("p") {
                staging
                Shell("a", "true").dependsOn("b")
                Shell("b", "true")
            }
            """)
        #expect(result.status == 2)
        #expect(result.stderr.contains("dependency cycle: "), "\(result.stderr)")
        #expect(result.stderr.contains("a → b → a") || result.stderr.contains("b → a → b"))
    }

    @Test func anUnknownDependencyIsNamed() throws {
        let result = try planOf(
            """
            Pipeline("p") {
                staging
                Shell("a", "true").dependsOn("migrate")
            }
            """)
        #expect(result.status == 2)
        #expect(result.stderr == "error: stage 'a': depends on unknown stage 'migrate'\n")
    }

    @Test func duplicateIdsAndBadDurationsComeTogether() throws {
        let result = try planOf(
            """
            Pipeline("p") {
                staging
                Shell("a", "true")
                Shell("a", "true").timeout(.seconds(-1))
                Approval("gate", approvers: ["alice"], required: 2)
            }
            """)
        #expect(result.status == 2)
        #expect(result.stderr.contains("error: 3 problems:"), "\(result.stderr)")
        #expect(result.stderr.contains("stage 'a': the id is used by more than one stage"))
        #expect(result.stderr.contains("stage 'a': invalid duration: timeout must be more than 0 seconds, got -1.0"))
        #expect(result.stderr.contains("stage 'gate': invalid count: required approvals must be 1 to 1, got 2"))
    }

    /// Names become file names and variables: unsafe ones and ones that would share a file or a variable are refused
    /// all at once, and nothing runs.
    @Test func unsafeAndCollidingNamesAreRefusedTogether() throws {
        let result = try planOf(
            """
            let evil = Service("../evil", repository: "r1", port: 1, protocol: .http)
            let spaced = Service("a b;touch f", repository: "r2", port: 2, protocol: .http)
            Pipeline("p") {
                staging
                evil
                spaced
                Shell("a/b", "true")
                Shell("a_b", "true")
                Shell("c.d", "true")
                Shell("c-d", "true")
                Shell("../../x", "true")
                Shell("semi;$(touch f)", "true")
                Shell("with space", "true")
            }
            """)
        #expect(result.status == 2)
        let err = result.stderr
        #expect(err.contains("stage 'a/b': the id contains '/'; ids may use only letters a-z and A-Z, digits, '.', '-' and '_'"), "\(err)")
        #expect(err.contains("stage '../../x': the id does not start with a letter or digit"), "\(err)")
        #expect(err.contains("stage 'semi;$(touch f)': the id contains"), "\(err)")
        #expect(err.contains("stage 'with space': the id contains space"), "\(err)")
        #expect(err.contains("service '../evil': the name does not start with a letter or digit"), "\(err)")
        #expect(err.contains("service 'a b;touch f': the name contains"), "\(err)")
        #expect(err.contains("stages 'a/b' and 'a_b' share the files logs/a_b.log"), "\(err)")
        #expect(err.contains("stages 'c-d' and 'c.d' both export PIPELINE_OUTPUT_C_D_<KEY>; rename one of them"), "\(err)")
        #expect(!FileManager.default.fileExists(atPath: "f"))
    }

    @Test func aMissingTemplateIsNamed() throws {
        let result = try planOf(
            """
            Pipeline("p") {
                staging
                api
                EachService { RegisterTaskDefinition() }
            }
            """, templates: false)
        #expect(result.status == 2)
        #expect(result.stderr.contains("stage 'api-service.register': task-definition template taskdefs/api-service.json does not exist"), "\(result.stderr)")
    }

    @Test func anInvalidTemplateIsNamed() throws {
        let result = try planOf(
            """
            Pipeline("p") {
                staging
                api.taskDefinition("taskdefs/bad.json")
                EachService { RegisterTaskDefinition() }
            }
            """,
            extra: ["pipelines/taskdefs/bad.json": #"{"family": "x", "containers": [], "containerDefinitions": [{"name": "a", "image": "{{image}}"}]}"#])
        #expect(result.status == 2)
        #expect(result.stderr.contains("stage 'api-service.register': task-definition template taskdefs/bad.json is not a RegisterTaskDefinition request: $: unknown field 'containers'"), "\(result.stderr)")
    }

    @Test func theUsersPrintNeverReachesTheJSON() throws {
        let folder = TemporaryDirectory()
        folder.write("elsewhere/Pipeline.swift", header + "print(\"hello from the pipeline\")\nPipeline(\"p\") { staging }\n")
        let result = try runProcess(
            Project.executable, ["plan", "staging", "--json"], in: folder.url,
            environment: [
                "PIPELINE_PIPELINES": folder.url.appending(path: "elsewhere").path,
                "PIPELINE_HOME": folder.url.appending(path: "state").path,
            ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("hello from the pipeline"))
        #expect(result.stdout.hasPrefix("{"))
        let mode = try FileManager.default.attributesOfItem(atPath: folder.url.appending(path: "state").path)[.posixPermissions] as? Int
        #expect(mode == 0o700)
    }

    @Test func noPipelinesFolderSaysWhatToDo() throws {
        let folder = TemporaryDirectory()
        let result = try runProcess(Project.executable, ["plan", "staging"], in: folder.url, environment: ["PIPELINE_PIPELINES": ""])
        #expect(result.status == 2)
        #expect(result.stderr.contains("no pipelines/ folder in"))
        #expect(result.stderr.contains("--pipelines DIR"))
    }
}
